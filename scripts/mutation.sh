#!/usr/bin/env bash
# Mutation score of one simweb module against its own tests, with mutmut 3 (pip install mutmut).
#
#   scripts/mutation.sh simweb/watermark.py                   # the module's own tests, from the table below
#   scripts/mutation.sh simweb/sampling.py tests/test_x.py    # or name the tests
#
# It mutates a copy of the tree in a temporary directory (the checkout is never touched), runs the tests
# against every mutant, and prints the score (killed / mutants) and the surviving mutants with their diffs.
# Not part of CI: a module takes minutes on 2 cores. MUTMUT_CHILDREN sets parallel test processes (default 1);
# MUTMUT_KEEP=1 keeps the work directory (its path is printed) to inspect mutants with `mutmut show NAME`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
module=${1:?usage: scripts/mutation.sh MODULE [TEST_FILE ...]}
shift

# each module's own fast tests (seconds, not minutes: they run once per mutant)
filter_tests="tests/test_filters.py tests/agents/test_scraper.py"
declare -A own_tests=(
  [simweb/watermark.py]="tests/test_watermark.py"
  [simweb/sampling.py]="tests/test_sampling.py"
  [simweb/regimes.py]="tests/test_regimes.py"
  [simweb/filters/base.py]="$filter_tests"
  [simweb/filters/allowlist.py]="$filter_tests"
  [simweb/filters/classifier.py]="$filter_tests"
  [simweb/filters/cutoff.py]="$filter_tests"
  [simweb/filters/dedup.py]="$filter_tests"
  [simweb/filters/likelihood.py]="$filter_tests"
  [simweb/filters/provenance.py]="tests/test_filters.py"
  [simweb/filters/verifier.py]="$filter_tests"
  [simweb/filters/watermark.py]="$filter_tests"
  [simweb/agents/evaluator.py]="tests/agents/test_evaluator.py tests/language/test_drift.py"
  [simweb/models/prior.py]="tests/models/test_prior.py"
  [simweb/models/simple.py]="tests/models/test_simple.py tests/models/test_prior.py"
  [simweb/models/ngram.py]="tests/models/test_ngram.py tests/models/test_prior.py"
  # the formulas, derived a second way; the reproduction itself (tests/test_reproduce.py) takes minutes
  [simweb/reproduce.py]="tests/test_reproduce_formulas.py tests/test_reproduce.py::test_the_exact_absorption_chain_is_a_distribution_that_absorbs"
)
if [ $# -gt 0 ]; then
  tests=("$@")
else
  read -ra tests <<< "${own_tests[$module]:?no tests listed for $module: name them after the module}"
fi
[ -f "$root/$module" ] || { echo "no such module: $module" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/simweb-mutation.XXXXXX")
if [ "${MUTMUT_KEEP:-0}" = 1 ]; then echo "work directory: $work" >&2; else trap 'rm -rf "$work"' EXIT; fi
cp -r "$root/simweb" "$root/tests" "$root/scenarios" "$root/pyproject.toml" "$work/"
{
  echo "[mutmut]"
  echo "source_paths=simweb"
  echo "only_mutate=$module"
  echo "pytest_add_cli_args_test_selection="
  printf '    %s\n' "${tests[@]}"
  echo "also_copy="
  echo "    scenarios"
  # fork (the default) copies a runner that has used polars: its thread pool is gone in the child and the
  # first polars call of an end-to-end test waits forever, so every mutant that reaches one "times out"
  echo "process_isolation=forkserver"
} > "$work/setup.cfg"

cd "$work"
# the mutated copy must be the simweb the tests import, not a checkout on PYTHONPATH
unset PYTHONPATH
mutmut run --max-children "${MUTMUT_CHILDREN:-1}" > mutmut-run.log 2>&1 || { tail -40 mutmut-run.log >&2; exit 1; }
mutmut export-cicd-stats > /dev/null
python - <<'PY'
import json
stats = json.load(open("mutants/mutmut-cicd-stats.json"))
total = stats["total"] - stats.get("skipped", 0)
print(f"mutants: {stats['total']}, killed {stats['killed']}, survived {stats['survived']}, "
      f"timeout {stats.get('timeout', 0)}, suspicious {stats.get('suspicious', 0)}, no tests {stats.get('no_tests', 0)}")
# a timeout is a kill (the mutant hangs the tests), but on a loaded machine check it by hand: mutmut show NAME
killed = stats["killed"] + stats.get("timeout", 0)
print(f"score: {killed}/{total} = {100 * killed / max(total, 1):.1f} % killed (timeouts included)")
PY
echo "surviving mutants (and mutants no test reaches):"
for name in $(mutmut results 2>/dev/null | awk -F: '/: (survived|no tests)$/ {print $1}'); do
  echo "---- $name"
  mutmut show "$name" | sed -n '/^@@/,$p'
done
