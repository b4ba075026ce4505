"""Each noise law is one registration: the units' choices, the fused codes and docs read it."""

import re
from pathlib import Path

import pytest

from activations import fused, gulcehre, noise, noisy_relu
from activations.registry import entry

ROOT = Path(__file__).resolve().parents[2]


def _choices(unit: str, param: str) -> tuple[str, ...]:
    (spec,) = [p for p in entry(unit).params if p.name == param]
    assert spec.choices is not None
    return spec.choices


def test_noisy_relu_takes_every_zero_mean_law():
    zero_mean = tuple(law.name for law in noise.laws() if law.mean == 0.0)
    assert _choices("noisy_relu", "distribution") == zero_mean == noisy_relu._DISTRIBUTIONS
    assert "half_normal" not in zero_mean


@pytest.mark.parametrize("unit", ["noisy_hard_tanh", "noisy_hard_sigmoid"])
def test_gulcehre_units_take_the_papers_two_laws_by_registered_spellings(unit):
    choices = _choices(unit, "noise")
    assert choices == gulcehre._LAWS
    assert [noise.law(k).name for k in choices] == ["gaussian", "half_normal"]


def test_kind_spellings_are_names_then_aliases_of_registered_laws():
    spellings = [s for law in noise.laws() for s in (law.name, *law.aliases)]
    assert list(noise.KINDS) == spellings
    assert noise.law("normal") is noise.law("gaussian")


def test_fused_kind_codes_are_the_registered_kernels():
    registered = {k: noise.law(k).kernel for k in noise.KINDS if noise.law(k).kernel is not None}
    assert registered == fused.KIND_CODES
    # One code per law: an alias shares its law's kernel, two laws never share one.
    kernels = [law.kernel for law in noise.laws() if law.kernel is not None]
    assert len(set(kernels)) == len(kernels)


def test_moments_come_from_the_registration():
    for kind in noise.KINDS:
        law = noise.law(kind)
        assert (noise.mean_of(kind), noise.std_of(kind)) == (law.mean, law.std)


def test_a_taken_spelling_is_refused_and_an_unknown_one_lists_the_valid():
    with pytest.raises(ValueError, match="already registered"):
        noise.register(noise.Law("normal", noise.law("gaussian").sampler, "dup", "none"))
    with pytest.raises(ValueError, match="unknown noise kind 'cauchy'; valid: gaussian, normal"):
        noise.law("cauchy")
    with pytest.raises(ValueError, match="unknown noise kind"):
        noise.spellings("normal", "cauchy")


def test_docs_table_lists_every_registered_law():
    text = (ROOT / "docs" / "activations.md").read_text()
    section = text.split("## Noise laws", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w+)(?: \(([\w, ]+)\))? \|", section, re.MULTILINE)
    documented = {name: tuple(filter(None, aliases.split(", "))) for name, aliases in rows[1:]}
    assert documented == {law.name: law.aliases for law in noise.laws()}
