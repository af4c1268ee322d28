"""changed_settings: the values a scenario sets, and nothing that is a default."""

from __future__ import annotations

from simweb.scenario import parse_scenario
from simweb.scenario.changes import changed_settings, literal
from tests.helpers import MINIMAL


def _changes(text: str, *overrides: str) -> dict[str, str]:
    return {path: literal(value) for path, value in changed_settings(parse_scenario(text, list(overrides)))}


def test_the_smallest_scenario_shows_only_its_required_values():
    # MINIMAL sets run.ticks, one publisher's site_share and one lab's name (which is in the path)
    assert _changes(MINIMAL) == {"run.ticks": "3", "publishers.pub.site_share": "1.0"}


def test_an_override_shows_under_its_set_path_and_a_default_given_explicitly_does_not():
    changes = _changes(MINIMAL, "labs.lab.reserve_fraction=0.3", "labs.lab.reserve_docs=100",
                       "labs.lab.crawl_budget=2000", "web.homophily=4.0", "labs.lab.regime=accumulate")
    assert changes["labs.lab.reserve_fraction"] == "0.3"
    assert changes["labs.lab.regime"] == '"accumulate"'
    assert "labs.lab.crawl_budget" not in changes and "web.homophily" not in changes


def test_nested_tables_show_only_their_changed_keys():
    changes = _changes(MINIMAL, "publishers.pub.ai_adoption={end = 0.9}", "labs.lab.model={alpha = 0.0}")
    assert changes["publishers.pub.ai_adoption.end"] == "0.9"
    assert "publishers.pub.ai_adoption.start" not in changes and "publishers.pub.ai_adoption.rate" not in changes
    assert changes["labs.lab.model.alpha"] == "0.0" and "labs.lab.model.family" not in changes


def test_another_family_and_a_filter_chain_show_their_kind_and_their_changed_keys():
    changes = _changes(MINIMAL, 'labs.lab.filters=[{kind = "classifier", tpr = 0.5}, {kind = "dedup"}]',
                       'labs.lab.model={family = "transformer", layers = 3}', "labs.lab.prior={strength = 2.0}")
    assert changes["labs.lab.filters[0].kind"] == '"classifier"' and changes["labs.lab.filters[0].tpr"] == "0.5"
    assert "labs.lab.filters[0].fpr" not in changes
    assert changes["labs.lab.filters[1].kind"] == '"dedup"'
    assert changes["labs.lab.model.family"] == '"transformer"' and changes["labs.lab.model.layers"] == "3"
    assert "labs.lab.model.width" not in changes
    assert changes["labs.lab.prior.strength"] == "2.0" and "labs.lab.prior.toward" not in changes


def test_a_gaussian_language_names_its_family():
    text = MINIMAL.replace("[[labs]]", '[language]\nfamily = "gaussian"\nstd = 2.0\n\n[[labs]]') \
        + 'model = { family = "gaussian" }\n'
    changes = _changes(text)
    assert changes["language.family"] == '"gaussian"' and changes["language.std"] == "2.0"
    assert "language.dim" not in changes and "language.vocab_size" not in changes
