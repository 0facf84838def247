"""Instructions shared by strategies, written once so they cannot drift."""

DIRECT = ("Answer the question directly. Reply with only the final answer, "
          "without any explanation.")

COT = ("Solve the problem step by step. Then give the final answer on the last line "
       "in the form: Answer: <answer>")

ZERO_SHOT_COT_SUFFIX = "\n\nLet's think step by step."
