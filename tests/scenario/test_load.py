"""Scenario loading: TOML -> overrides -> validation, and every error naming the field and the bad value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pydantic
import pytest

from simweb.errors import ScenarioError, SimwebError
from simweb.scenario import Scenario, apply_overrides, dump_scenario, load_scenario, parse_scenario
from tests.helpers import MINIMAL

QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.toml"

# The smallest valid scenario: everything not written is a default.



def _with_lab(extra: str) -> str:
    """MINIMAL with ``extra`` lines added to its only lab."""
    return MINIMAL.replace('name = "lab"', f'name = "lab"\n{extra}')


def _with_publisher(extra: str) -> str:
    return MINIMAL.replace("site_share = 1.0", f"site_share = 1.0\n{extra}")


def _error(text: str, overrides=(), **kw) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, overrides, **kw)
    return info.value


# ---------------------------------------------------------------- good files
def test_quickstart_loads_with_its_values_and_the_defaults():
    sc = load_scenario(QUICKSTART)
    assert isinstance(sc, Scenario)
    assert (sc.run.name, sc.run.seed, sc.run.ticks) == ("quickstart", 7, 21)
    assert sc.run.executor == "ray"  # the default: not written in the file
    assert [p.name for p in sc.publishers] == ["newsrooms", "content_farms"]
    assert [lab.name for lab in sc.labs] == ["naive", "careful"]
    naive, careful = sc.labs
    assert (naive.crawl_budget, naive.new_only, naive.regime.kind) == (3000, True, "replace")
    assert naive.model.family == "ngram" and naive.model.alpha == 0.0
    assert careful.regime.kind == "accumulate" and careful.reserve_fraction == 0.3
    assert [(f.kind, f.tpr, f.fpr) for f in careful.filters] == [("classifier", 0.85, 0.02)]
    assert sc.publishers[1].top_p == 0.95 and sc.publishers[1].ai_adoption.end == 0.98
    assert sc.language.family == "markov" and sc.language.vocab_size == 256


def test_minimal_scenario_takes_defaults_for_everything_else():
    sc = parse_scenario(MINIMAL)
    assert sc.run.name == "simweb" and sc.run.seed == 0 and sc.run.shards is None
    assert sc.language.family == "markov"  # family defaults to markov, model family to ngram
    assert sc.labs[0].model.family == "ngram" and sc.labs[0].model.order == 1
    assert sc.labs[0].filters == () and sc.labs[0].prior is None
    assert sc.publishers[0].uses is None
    assert sc.evaluation.human_docs == 1000


def test_an_integer_is_accepted_where_a_number_is_expected():
    sc = parse_scenario(_with_publisher("ai_adoption = { midpoint = 4 }").replace("site_share = 1.0", "site_share = 1"))
    assert sc.publishers[0].site_share == 1.0 and sc.publishers[0].ai_adoption.midpoint == 4.0


def test_scenario_is_immutable_all_the_way_down():
    sc = load_scenario(QUICKSTART)
    with pytest.raises(pydantic.ValidationError):
        sc.run.ticks = 5
    with pytest.raises(pydantic.ValidationError):
        sc.labs[0].crawl_budget = 5
    assert isinstance(sc.labs, tuple) and isinstance(sc.labs[1].filters, tuple)


def test_other_language_families_load():
    gaussian = parse_scenario(_with_lab('model = { family = "gaussian", variance = "unbiased" }')
                              + '[language]\nfamily = "gaussian"\ndim = 3\nstd = 2.0\n')
    assert gaussian.language.family == "gaussian" and gaussian.language.dim == 3
    assert gaussian.labs[0].model.variance == "unbiased"
    categorical = parse_scenario(_with_lab('model = { family = "categorical" }')
                                 + '[language]\nfamily = "categorical"\noutcomes = 3\nprobs = [0.5, 0.25, 0.25]\n')
    assert categorical.language.probs == (0.5, 0.25, 0.25)


# ---------------------------------------------------------------- bad files
# (id, scenario text, overrides, expected path, words the message must contain)
BAD = [
    ("wrong type", MINIMAL.replace("ticks = 3", 'ticks = "three"'), (),
     "run.ticks", ["expected an integer", "'three'"]),
    ("bool is not an integer", MINIMAL.replace("ticks = 3", "ticks = true"), (), "run.ticks", ["expected an integer", "True"]),
    ("float is not an integer", MINIMAL.replace("ticks = 3", "ticks = 2.5"), (), "run.ticks", ["expected an integer", "2.5"]),
    ("bool is not a number", MINIMAL.replace("site_share = 1.0", "site_share = true"), (),
     "publishers[0].site_share", ["expected a number", "True"]),
    ("out of range", MINIMAL + '[[labs]]\nname = "b"\ncrawl_budget = -5\n', (),
     "labs[1].crawl_budget", ["expected an integer >= 1, got -5"]),
    ("only lab out of range", _with_lab("crawl_budget = -5"), (),
     "labs[0].crawl_budget", ["expected an integer >= 1, got -5"]),
    ("float upper bound", MINIMAL.replace("site_share = 1.0", "site_share = 2"), (),
     "publishers[0].site_share", ["<= 1.0", "got 2"]),
    ("optional integer bound", _with_lab("train_docs = 0"), (), "labs[0].train_docs", ["expected an integer >= 1, got 0"]),
    ("nan", _with_lab("market_share = nan"), (), "labs[0].market_share", ["nan"]),
    ("typo", _with_lab("crawl_budgte = 5"), (),
     "labs[0].crawl_budgte", ["unknown key 'crawl_budgte'", "did you mean 'crawl_budget'"]),
    ("typo of a table", MINIMAL + "[evalution]\n", (), "evalution", ["unknown key", "did you mean 'evaluation'"]),
    ("typo in an inline table", _with_publisher("ai_adoption = { strat = 0.1 }"), (),
     "publishers[0].ai_adoption.strat", ["did you mean 'start'"]),
    ("typo in a model", _with_lab("model = { order = 2, ordr = 2 }"), (),
     "labs[0].model.ordr", ["did you mean 'order'"]),
    ("typo in a filter", _with_lab('filters = [{ kind = "classifier", tprr = 0.9 }]'), (),
     "labs[0].filters[0].tprr", ["did you mean 'tpr'"]),
    ("typo in a language", MINIMAL + '[language]\nfamily = "gaussian"\nstdd = 1.0\n', (),
     "language.stdd", ["did you mean 'std'"]),
    ("no labs", MINIMAL.split("[[labs]]")[0], (), "labs", ["required"]),
    ("no publishers", MINIMAL.replace('[[publishers]]\nname = "pub"\nsite_share = 1.0\n', ""), (),
     "publishers", ["required"]),
    ("empty publishers", "publishers = []\n" + MINIMAL.replace('[[publishers]]\nname = "pub"\nsite_share = 1.0\n', ""), (),
     "publishers", ["at least 1", "[]"]),
    ("labs not a list", "labs = 3\n" + MINIMAL.split("[[labs]]")[0], (), "labs", ["expected a list", "3"]),
    ("run not a table", MINIMAL.replace("[run]", "[[run]]"), (), "run", ["expected a table"]),
    ("missing name", MINIMAL.replace('name = "pub"\n', ""), (), "publishers[0].name", ["required"]),
    ("bad name", MINIMAL.replace('name = "pub"', 'name = "my pub"'), (), "publishers[0].name", ["'my pub'"]),
    ("unknown family", MINIMAL + '[language]\nfamily = "transformer"\n', (),
     "language.family", ["'markov'", "'transformer'"]),
    ("unknown model family", _with_lab('model = { family = "lstm" }'), (),
     "labs[0].model.family", ["'ngram'", "'lstm'"]),
    ("unknown filter kind", _with_lab('filters = [{ kind = "oracle" }]'), (),
     "labs[0].filters[0].kind", ["'classifier'", "'oracle'"]),
    ("missing filter kind", _with_lab("filters = [{ tpr = 0.5 }]"), (),
     "labs[0].filters[0].kind", ["required", "'classifier'"]),
    ("unknown literal", MINIMAL.replace("ticks = 3", 'ticks = 3\nexecutor = "spark"'), (),
     "run.executor", ["'local'", "'spark'"]),
    ("language not a table", "language = 3\n" + MINIMAL, (), "language", ["expected a table", "3"]),
    ("model not a table", _with_lab("model = 3"), (), "labs[0].model", ["expected a table", "3"]),
    ("duplicate lab", MINIMAL + '[[labs]]\nname = "lab"\n', (), "labs[1].name", ["duplicate", "'lab'", "labs[0]"]),
    ("duplicate publisher", MINIMAL.replace("[[labs]]", '[[publishers]]\nname = "pub"\nsite_share = 0.5\n[[labs]]'), (),
     "publishers[1].name", ["duplicate", "'pub'"]),
    ("uses an unknown lab", _with_publisher('uses = ["lab", "labz"]'), (),
     "publishers[0].uses[1]", ["'labz'", "did you mean 'lab'"]),
    ("model incompatible with language", MINIMAL + '[language]\nfamily = "gaussian"\n', (),
     "labs[0].model.family", ["gaussian", "'ngram'"]),
    ("ngram table too large", _with_lab("model = { order = 4 }"), (), "labs[0].model.order", ["order 4", "vocab_size 256"]),
    ("ngram order past its bound", _with_lab("model = { order = 9 }"), (), "labs[0].model.order", ["<= 8, got 9"]),
    ("probabilities of the wrong length",
     _with_lab('model = { family = "categorical" }') + '[language]\nfamily = "categorical"\noutcomes = 3\nprobs = [0.5, 0.5]\n',
     (), "language.probs", ["expected 3", "got 2"]),
    ("probabilities not summing to one",
     _with_lab('model = { family = "categorical" }') + '[language]\nfamily = "categorical"\noutcomes = 2\nprobs = [0.5, 0.6]\n',
     (), "language.probs", ["[0.5, 0.6]"]),
    ("top-p on a gaussian", _with_publisher("top_p = 0.9").replace('name = "lab"', 'name = "lab"\nmodel = { family = "gaussian" }')
     + '[language]\nfamily = "gaussian"\n', (), "publishers[0].top_p", ["0.9"]),
    ("first release after the run", _with_lab("first_release = 5"), (), "labs[0].first_release", ["got 5", "run.ticks"]),
    ("reserve fraction without reserve", _with_lab("reserve_fraction = 0.5"), (),
     "labs[0].reserve_fraction", ["reserve_docs", "0.5"]),
    ("no lab with market share", _with_lab("market_share = 0.0"), (), "labs", ["market_share"]),
    ("override out of range", MINIMAL, ["labs[0].crawl_budget=0"], "labs[0].crawl_budget", ["expected an integer >= 1, got 0"]),
    ("override bad value", MINIMAL, ["run.ticks=abc"], "run.ticks", ["expected an integer", "'abc'"]),
    ("override unknown key", MINIMAL, ["run.tiks=3"], "run.tiks", ["did you mean 'ticks'"]),
    ("override unknown table", MINIMAL, ["lab.crawl_budget=3"], "lab", ["did you mean 'labs'"]),
    ("override replaces a table", MINIMAL, ["labs[0]=3"], "labs[0]", ["expected a table", "3"]),
    ("seed out of range", MINIMAL, ["run.seed=-1"], "run.seed", [">= 0", "-1"]),
]


@pytest.mark.parametrize(("text", "overrides", "path", "words"), [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_bad_scenario_names_the_field_and_the_value(text, overrides, path, words):
    err = _error(text, overrides)
    assert err.path == path, f"{err}"
    for word in words:
        assert word in err.message, f"{word!r} not in {err.message!r}"
    assert str(err).startswith(f"{path}: ")
    assert "\n" not in str(err)
    assert "()" not in err.message, f"stray call parentheses in {err.message!r}"


def test_only_problem_is_not_reported_twice():
    # a list whose only entry fails is also "too short" for pydantic; that echo is not a second problem
    err = _error(_with_lab("crawl_budget = -5"))
    assert err.message == "expected an integer >= 1, got -5"


def test_several_problems_report_the_first_and_count_the_rest():
    err = _error(_with_lab("crawl_budget = 0\nanchors = -1"))
    assert err.path == "labs[0].crawl_budget"
    assert err.message.endswith("(and 1 more problem)")


def test_empty_and_blank_text():
    for text in ("", "  \n\n\t"):
        err = _error(text)
        assert err.path == "" and "empty" in err.message


def test_broken_toml_says_where():
    err = _error(MINIMAL.replace("ticks = 3", "ticks = = 3"))
    assert err.path == "" and "not valid TOML" in err.message and "line 3" in err.message


def test_source_is_named_in_the_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(_with_lab("crawl_budget = -5"), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert info.value.path == "labs[0].crawl_budget"
    assert info.value.source == str(bad)
    assert str(info.value) == f"{bad}: labs[0].crawl_budget: expected an integer >= 1, got -5"


def test_missing_file_directory_and_undecodable_file(tmp_path):
    cases = {tmp_path / "nope.toml": "no such scenario file", tmp_path: "not a file"}
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[run]\n")
    cases[binary] = "cannot read"
    for path, words in cases.items():
        with pytest.raises(ScenarioError) as info:
            load_scenario(path)
        assert words in info.value.message and str(path) in info.value.message
        assert isinstance(info.value, SimwebError)


# ---------------------------------------------------------------- overrides
def test_overrides_by_index_and_by_name_through_validation():
    sc = load_scenario(QUICKSTART, ["labs[1].crawl_budget=500", "labs.naive.regime=accumulate",
                                    "publishers.content_farms.ai_adoption.end=0.5", "run.name=other"])
    assert sc.labs[1].crawl_budget == 500
    assert sc.labs[0].regime.kind == "accumulate" and sc.labs[1].regime.kind == "accumulate"
    assert sc.publishers[1].ai_adoption.end == 0.5 and sc.publishers[0].ai_adoption.end == 0.3
    assert sc.run.name == "other"


def test_overrides_apply_in_order_and_seed_comes_last():
    sc = parse_scenario(MINIMAL, ["run.seed=5", "run.ticks=4", "run.ticks=6"], seed=11)
    assert sc.run.seed == 11 and sc.run.ticks == 6
    assert parse_scenario(MINIMAL, ["run.seed=5"]).run.seed == 5


def test_seed_is_validated():
    err = _error(MINIMAL, seed=2**64)
    assert err.path == "run.seed" and str(2**64) in err.message


def test_override_values_are_toml_literals_else_bare_strings():
    data = {"a": {}}
    out = apply_overrides(data, ["a.int=500", "a.float=0.3", "a.bool=true", "a.list=[1, 2]", 'a.quoted="x y"',
                                 "a.bare=accumulate", "a.eq=k=v", "a.empty=", 'a.table={ family = "ngram", order = 2 }',
                                 "  a.spaced  =  7  "])
    assert out["a"] == {"int": 500, "float": 0.3, "bool": True, "list": [1, 2], "quoted": "x y", "bare": "accumulate",
                        "eq": "k=v", "empty": "", "table": {"family": "ngram", "order": 2}, "spaced": 7}


def test_overrides_create_missing_tables_and_leave_the_input_alone():
    data = {"labs": [{"name": "a", "model": {"order": 1}}]}
    out = apply_overrides(data, ["run.ticks=3", "labs[0].model.order=2", "labs.a.filters=[]"])
    assert out == {"labs": [{"name": "a", "model": {"order": 2}, "filters": []}], "run": {"ticks": 3}}
    assert data == {"labs": [{"name": "a", "model": {"order": 1}}]}


def test_override_by_name_prefers_a_name_to_a_digit_index():
    data = {"labs": [{"name": "x"}, {"name": "0"}]}
    assert apply_overrides(data, ["labs.0.v=1"])["labs"][1] == {"name": "0", "v": 1}
    assert apply_overrides({"labs": [{"name": "x"}]}, ["labs.0.v=1"])["labs"][0] == {"name": "x", "v": 1}


@pytest.mark.parametrize(("override", "path", "words"), [
    ("labs[0].crawl_budget", "--set", ["expected path=value", "'labs[0].crawl_budget'"]),
    ("=3", "--set", ["empty path"]),
    ("labs[0.crawl_budget=3", "--set", ["'labs[0.crawl_budget'"]),
    ("labs..x=3", "--set", ["'labs..x'"]),
    ("labs[-1].x=3", "--set", ["'labs[-1].x'"]),
    ("labs[5].crawl_budget=3", "labs[5]", ["out of range", "2 entries"]),
    ("labs.naiv.regime=accumulate", "labs.naiv", ["'naiv'", "did you mean 'naive'"]),
    ("run[0]=3", "run[0]", ["run is a table"]),
    ("run.ticks.x=3", "run.ticks", ["21"]),
])
def test_bad_override_names_the_path(override, path, words):
    data = tomllib.loads(QUICKSTART.read_text(encoding="utf-8"))
    with pytest.raises(ScenarioError) as info:
        apply_overrides(data, [override])
    assert info.value.path == path
    for word in words:
        assert word in info.value.message, f"{word!r} not in {info.value.message!r}"


def test_indexing_the_top_level_names_it_plainly():
    with pytest.raises(ScenarioError) as info:
        apply_overrides({"run": {}}, ["[0]=3"])
    message = info.value.message
    assert message == message.strip() and message, f"message {message!r} has a stray space or is empty"
    assert "[0]" in str(info.value)


# ---------------------------------------------------------------- dump
ROUND_TRIPS = {
    "quickstart": QUICKSTART.read_text(encoding="utf-8"),
    "minimal": MINIMAL,
    "gaussian with prior": _with_lab('model = { family = "gaussian", variance = "unbiased" }\nprior = { strength = 2.0 }')
    + '[language]\nfamily = "gaussian"\ndim = 3\nmean = -1.5\n',
    "categorical with probs": _with_lab('model = { family = "categorical" }\nprior = { strength = 0.5, toward = "uniform" }')
    + '[language]\nfamily = "categorical"\noutcomes = 3\nprobs = [0.5, 0.25, 0.25]\n',
    "filters, uses, shards, big seed": f"""
[run]
ticks = 3
shards = 4
seed = {2**63 - 1}

[[publishers]]
name = "pub"
site_share = 1.0
uses = ["lab"]

[[labs]]
name = "lab"
filters = [{{ kind = "date_cutoff", tick = 0 }}, {{ kind = "classifier" }}]
""",
}


@pytest.mark.parametrize("text", list(ROUND_TRIPS.values()), ids=list(ROUND_TRIPS))
def test_dump_loads_back_into_an_equal_scenario(text):
    sc = parse_scenario(text)
    dumped = dump_scenario(sc)
    assert parse_scenario(dumped) == sc
    assert dump_scenario(parse_scenario(dumped)) == dumped


def test_dump_writes_every_default_and_no_nones():
    dumped = tomllib.loads(dump_scenario(parse_scenario(MINIMAL)))
    assert dumped["run"] == {"name": "simweb", "seed": 0, "ticks": 3, "executor": "ray"}
    assert dumped["labs"][0]["model"] == {"family": "ngram", "order": 1, "alpha": 0.01}
    assert dumped["language"]["family"] == "markov" and dumped["language"]["vocab_size"] == 256
    assert set(dumped) == {"run", "language", "web", "publishers", "labs", "evaluation"}
    assert "uses" not in dumped["publishers"][0] and "prior" not in dumped["labs"][0]


@pytest.mark.parametrize("overrides,path", [
    (["labs[0].snapshot=-1"], "labs[0].snapshot"),
    (["labs[0].snapshot='release + 1'"], "labs[0].snapshot"),
    (["labs[0].snapshot=true"], "labs[0].snapshot"),
    (["labs[0].snapshot=3", "labs[0].first_release=2"], "labs[0].snapshot"),  # the future at its first crawl
    (["labs[0].snapshot='release - 3'", "labs[0].first_release=2"], "labs[0].snapshot"),  # before the web began
    (["labs[0].regime={kind='window', window_ticks=0}"], "labs[0].regime.window_ticks"),
    (["labs[0].regime={kind='window'}"], "labs[0].regime.window_ticks"),
    (["language={family='gaussian', drift={mean_step_sd=-0.1}}", "labs[0].model={family='gaussian'}"],
     "language.drift.mean_step_sd"),
])
def test_drift_archive_and_window_keys_are_validated_naming_the_field(overrides, path):
    from tests.helpers import COLLAPSE, scenario

    with pytest.raises(ScenarioError) as err:
        scenario(COLLAPSE, *overrides)
    assert str(err.value).startswith(path + ":") and "\n" not in str(err.value), str(err.value)
