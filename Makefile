# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export DS_ACCELERATOR := cpu
export RAY_ENABLE_UV_RUN_RUNTIME_ENV := 0
# DeepSpeed JIT-builds its CPU comm op on first use. A build cache per checkout (inside the venv, so `make
# clean` clears it) keeps two checkouts from rebuilding each other's copy, and a lock left by a build that
# was killed in another checkout from blocking this one's workers.
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.venv/torch_extensions

.PHONY: demo test install clean

install: $(STAMP)

# The pinned CPU torch goes in first: anything that asks for torch later finds it satisfied
# instead of pulling CUDA wheels. DeepSpeed builds against that torch (no build isolation).
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet --no-build-isolation deepspeed==0.19.8
	$(PY) -m pip install --quiet -e '.[test]'
	# DeepSpeed's CPU communication op is JIT-built on first use (about a minute on 2 cores): built here, it is
	# part of the installation rather than of the first training run, with the venv's ninja, as every later load.
	$(PY) -c "from workflows.training.jit_build import build_deepspeed_cpu_op; build_deepspeed_cpu_op()" > /dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m workflows.demo $(ARGS)

# CI stops the whole job at 90 minutes and keeps no pytest summary when it does. The suite gets 75 of them: past
# that, pytest is interrupted and still prints its failures and slowest tests, so a slow run says where.
# Where coreutils' timeout is missing (macOS), the suite runs without a limit.
TEST_BUDGET_S := 4500
TEST_LIMIT := $(if $(shell command -v timeout),timeout --signal=INT --kill-after=120 $(TEST_BUDGET_S))

test: $(STAMP)
	$(TEST_LIMIT) $(PY) -m pytest -q -rfE --durations=25

# Everything the demo, the tests and the entry points write into the checkout (the run outputs .gitignore
# lists), and the venv.
clean:
	rm -rf $(VENV) work mlflow.db mlartifacts mlruns outputs ray_results
