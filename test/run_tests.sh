#!/usr/bin/env bash
# The test suite, as CI runs it: ruff, then pytest (arguments go to pytest, e.g.
# `bash test/run_tests.sh -m "not slow"` or `bash test/run_tests.sh deeplab/zoo -x`), in two
# worker processes (DEEPLAB_TEST_WORKERS=N to change, 0 for none).
# On first use it creates .venv in the checkout and installs the package with its `cpu` and
# `test` extras (see test/env.sh; an active environment that has them is used as it is).
# The reference conformance fixtures are read from $DEEPLAB_REFERENCE_DIR, by default
# ../shared/fixtures/reference beside the checkout; where absent those tests are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
DEEPLAB_ENV_EXTRAS=test
# shellcheck source=test/env.sh
source test/env.sh
"$PYTHON" -m ruff check .
# two worker processes (pytest-xdist), each test file on one of them: about 1.6x faster on
# the 2-core machine than one process; DEEPLAB_TEST_WORKERS=0 runs in this process.
exec "$PYTHON" -m pytest -n "${DEEPLAB_TEST_WORKERS:-2}" --dist loadfile "$@"
