"""The sleep agent's and the answerer's instructions, written once.

Paraphrased from the reference (letta-ai/sleep-time-compute,
``prompts/system/sleep_time_base.txt`` and the verbosity prompts): the sleep
agent precomputes quantities and inferences likely questions will need; the
answerer uses them instead of thinking on the spot.
"""

SLEEP_SYSTEM = (
    "You prepare for questions about a situation before they are asked. Read the situation "
    "and write notes that let someone answer likely questions at once: work out the "
    "quantities people are likely to ask about (totals, differences, what is left, amounts "
    "per item, final states), one short line each, with the calculation and its result. "
    "Check every calculation.\n\n"
    "Example.\nSituation: A box holds 4 pens. Sam buys 3 boxes. He gives 2 pens to Ann, who "
    "had 5 pens.\nNotes:\n"
    "- pens Sam bought = 3 * 4 = 12\n"
    "- pens Sam has after giving 2 away = 12 - 2 = 10\n"
    "- pens Ann has now = 5 + 2 = 7\n"
    "- pens Sam and Ann have together = 10 + 7 = 17")

TEXT_FIRST = "Situation:\n{context}\n{examples}\nNotes:"

TEXT_RETHINK = (
    "Situation:\n{context}\n{examples}\nYour notes so far:\n{memory}\n\n"
    "Check each calculation against the situation, fix mistakes, and add any useful "
    "quantity that is missing. Reply with the complete new notes, or reply with only "
    "FINISH if the notes are complete and correct.")

EXAMPLES = "\nQuestions already asked about it (expect more like these):\n{questions}\n"

FINISH_WORD = "FINISH"

TOOLS_SYSTEM = (
    SLEEP_SYSTEM + "\n\nYour notes live in the memory block `rethink_memory_block`, shown "
    "below. Call `rethink_memory` with the complete new notes to replace the block; call it "
    "again to add calculations, double-check earlier ones or remove useless ones. When every "
    "useful inference is in the block, call `finish_rethinking_memory`.\n\n"
    "<rethink_memory_block>\n{memory}\n</rethink_memory_block>")

TOOLS_TRIGGER = "[trigger_rethink_memory] New situation:\n{context}\n{examples}"

HERMES_TOOLS = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    "{tools}\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>')
"""How tool-calling chat templates (Qwen, Hermes) describe tools in the system prompt."""

RETHINK_MEMORY_TOOL = {
    "type": "function",
    "function": {
        "name": "rethink_memory",
        "description": (
            "Replace the whole memory block with new notes: quantities, calculations and "
            "inferences that help answer future questions about the situation. Never empty."),
        "parameters": {
            "type": "object",
            "properties": {"new_memory": {
                "type": "string",
                "description": "The complete new content of the memory block."}},
            "required": ["new_memory"],
        },
    },
}

FINISH_TOOL = {
    "type": "function",
    "function": {
        "name": "finish_rethinking_memory",
        "description": "Call when every useful inference is in the memory block.",
        "parameters": {"type": "object", "properties": {}},
    },
}

MERGE = (
    "Situation:\n{context}\n\nSeveral sets of notes were written about it:\n\n{notes}\n\n"
    "Merge them into one set of notes: keep each distinct, correct calculation once, drop "
    "duplicates and mistakes. Reply with only the merged notes.")

SELF_CHECK = (
    "Situation:\n{context}\n\nNotes:\n{notes}\n\nAre all the calculations in the notes "
    "correct and consistent with the situation? Answer Yes or No.")

ANSWER_WITH_NOTES = (
    "Notes prepared in advance about the situation below (check them for the quantities the "
    "question needs; do not recompute what they already state):\n{memory}")
