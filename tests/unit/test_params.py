import pytest

from ponder.errors import ConfigError
from ponder.params import SamplingParams


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("n", 0, "n must be an integer >= 1"),
    ("max_tokens", -5, "max_tokens must be an integer >= 1, got -5"),
    ("max_tokens", 0, "max_tokens"),
    ("temperature", -0.1, "temperature must be >= 0"),
    ("top_p", 0.0, "top_p must be in (0, 1]"),
    ("top_p", 1.5, "top_p"),
    ("logprobs", 50, "logprobs"),
    ("seed", "abc", "seed"),
])
def test_invalid_values_name_the_parameter(field: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("[", r"\[")):
        SamplingParams(**{field: value})


def test_min_tokens_cannot_exceed_max_tokens() -> None:
    with pytest.raises(ConfigError, match="min_tokens"):
        SamplingParams(max_tokens=10, min_tokens=11)


def test_stop_is_normalised_to_a_tuple() -> None:
    assert SamplingParams(stop="\n\n").stop == ("\n\n",)
    assert SamplingParams(stop=["a", "b"]).stop == ("a", "b")
    with pytest.raises(ConfigError, match="stop"):
        SamplingParams(stop=[""])


def test_logit_bias_range_is_checked() -> None:
    assert SamplingParams(logit_bias={5: -100}).logit_bias == {5: -100}
    with pytest.raises(ConfigError, match="logit_bias"):
        SamplingParams(logit_bias={5: 500})


def test_params_are_frozen_and_variants_revalidate() -> None:
    params = SamplingParams(n=2)
    with pytest.raises(AttributeError):
        params.n = 3  # type: ignore[misc]
    assert params.with_(n=4).n == 4
    assert params.n == 2
    with pytest.raises(ConfigError):
        params.with_(n=0)
