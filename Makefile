# Rosetta Stone of deep-learning frameworks.
#   make html   fresh benchmarks, then the book (_build/html)
#   make test   the fast tests; make test-slow: end to end, browser (CI runs both);
#   make test-fidelity: every row's accuracy on Fashion-MNIST (tuned rows too: over an hour on 2 cores)
# FRAMEWORKS=pytorch,jax  PROFILE=full|quick|fidelity|smoke  DATASET=auto|cifar10|fashion-mnist|synthetic
# make bench-tuning: what each change of the tuned rows costs or saves (Make it fast chapter)
# INIT_PROFILE: the profile of the own-init comparison (default: PROFILE if given, else fidelity)
# FRESH=all (or FRESH=parity,onnx,scale-out,features,defaults): measure the checks' tables again, even where a table
# made by the same code and environments on a machine of this kind is cached or committed (make html shows
# that one, and make test's parity, ONNX, scale-out and features tests assert on it)
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PY := .envs/main/bin/python
# Every test target ends with its ten slowest tests: where the time of CI goes.
PYTEST := $(PY) -m pytest --durations=10
FRAMEWORKS ?=
PROFILE ?=
DATASET ?= auto
PORT ?= 8000
BENCH_ARGS = $(if $(FRAMEWORKS),--frameworks $(FRAMEWORKS)) $(if $(PROFILE),--profile $(PROFILE)) --dataset $(DATASET)
INIT_PROFILE ?= $(or $(PROFILE),fidelity)
INIT_ARGS = $(if $(FRAMEWORKS),--frameworks $(FRAMEWORKS)) --profile $(INIT_PROFILE) --dataset $(DATASET)
# GPU=1: the environments install their frameworks' CUDA builds (envs/*/requirements-gpu.txt);
# GPU=0: the CPU builds. Default: 1 where nvidia-smi lists a GPU. Changing it recreates them.
GPU ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1 || echo 0)
export GPU
FRESH ?=
export FRESH
LEGACY_ENVS := $(foreach env,mxnet chainer cntk caffe2,.envs/$(env)/.installed)
SETUP := .envs/main/.installed book/_static/vendor/VERSIONS $(LEGACY_ENVS)

.PHONY: html plan book bench bench-rnn reference-rnn bench-resnet reference-resnet bench-attention reference-attention bench-defaults bench-tuning bench-inference bench-breakdown reference-breakdown reference reference-rows reference-tables reference-defaults \
	reference-tuning reference-inference scale-out reference-scale-out test-gpu-sets test-gpu-tools test-cpu-kinds \
	gpu-builds envs test test-slow test-onnx-rnn test-onnx-attention test-programs-cnn test-programs-rnn test-programs-resnet test-programs-attention test-fidelity serve clean
.DELETE_ON_ERROR:

# Ends with its own duration: what a build costs on this machine (the README asks for a GPU's).
# The environments first, two at a time (measured from an empty pip cache on 2 cores: main's, MXNet's
# and Caffe2's took 110 s one at a time, 70 s two at a time).
html:
	@start=$$(date +%s); $(MAKE) --no-print-directory -j2 envs && $(MAKE) --no-print-directory plan bench bench-rnn bench-resnet bench-attention book; echo "make html took $$(( $$(date +%s) - start )) s"

# What make html will run: every part's rows with their estimates, and the book's check tables.
plan: $(SETUP)
	$(PY) code/bench.py --plan $(BENCH_ARGS)

book: .envs/main/.installed book/_static/vendor/VERSIONS
	.envs/main/bin/jupyter-book build . --all -W -n --keep-going

# Then the own-init pair of the defaults chapter, only where one made by this code for this machine
# exists (here, or committed as the reference): otherwise it says so, and make bench-defaults runs it.
bench: $(SETUP)
	$(PY) code/bench.py --resume $(BENCH_ARGS)
	$(PY) code/bench.py --init-cost --only-if-stale $(INIT_ARGS)

# Part II's rows, the GRU (code/rnn/), into a run of their own beside the bag-of-words baseline; the
# reviews are IMDB's where its host answers, else the synthetic corpus (RNN_DATASET=synthetic|imdb).
RNN_DATASET ?= $(if $(filter synthetic,$(DATASET)),synthetic,auto)
bench-rnn: $(SETUP)
	$(PY) code/bench.py --model rnn --resume $(BENCH_ARGS:--dataset $(DATASET)=--dataset $(RNN_DATASET))

reference-rnn: $(SETUP)
	$(PY) code/bench.py --model rnn --reference --resume --profile quick --dataset $(RNN_DATASET)
	$(PY) code/bench.py --model rnn --reference --book-tables

# Part III's rows, ResNet-50 features (code/resnet/): each zoo's model on 224x224 images made from the
# CNN's dataset, timed per 1,000 images beside ONNX Runtime on the PyTorch row's file.
bench-resnet: $(SETUP)
	$(PY) code/bench.py --model resnet --resume $(BENCH_ARGS)

reference-resnet: $(SETUP)
	$(PY) code/bench.py --model resnet --reference --resume --profile quick --dataset $(DATASET)
	$(PY) code/bench.py --model resnet --reference --book-tables

# Part IV's rows, the Transformer encoder (code/attention/), on part II's reviews (RNN_DATASET as there).
bench-attention: $(SETUP)
	$(PY) code/bench.py --model attention --resume $(BENCH_ARGS:--dataset $(DATASET)=--dataset $(RNN_DATASET))

reference-attention: $(SETUP)
	$(PY) code/bench.py --model attention --reference --resume --profile quick --dataset $(RNN_DATASET)
	$(PY) code/bench.py --model attention --reference --book-tables

# What the frameworks' own weight init costs (defaults chapter): the frameworks whose default is not
# Glorot-uniform, trained with each, on INIT_PROFILE (fidelity: 4 epochs of 6,400 images, about
# 90 min on 2 cores); a pair made by the same code and environments is kept, not run again.
bench-defaults: $(SETUP)
	$(PY) code/bench.py --resume --init-cost $(INIT_ARGS)

# The reference runs a fresh clone's book shows, into data/results/reference/ to be committed: every
# row's quick run (about 30 min on 2 cores), the defaults, parity, ONNX and scale-out equivalence
# tables, the own-init pair (fidelity, about 1 h), the tuning ablation (1 to 2 h), inference, the
# scale-out runs, part II's rows and tables, and the breakdown. Each part can be run alone.
reference: reference-rows reference-tables reference-defaults reference-tuning reference-inference reference-scale-out reference-rnn reference-resnet reference-attention \
	reference-breakdown

reference-tables: $(SETUP)
	$(PY) code/bench.py --reference --book-tables

reference-rows: $(SETUP)
	$(PY) code/bench.py --reference --resume --profile quick --dataset $(DATASET) $(if $(FRAMEWORKS),--frameworks $(FRAMEWORKS))

reference-defaults: $(SETUP)
	$(PY) code/bench.py --reference --resume --init-cost --profile fidelity --dataset $(DATASET)

reference-tuning: $(SETUP)
	$(PY) code/bench.py --reference --tuning --profile quick --dataset $(DATASET)

# What each change of the tuned rows costs or saves here ("Make it fast"): each tuned row as it is,
# then once per change with that change flipped. Not part of html: on 2 cores, the quick profile
# takes one to two hours (bf16 without bf16 units is emulated, slowly). FRAMEWORKS=pytorch-tuned,... picks rows.
bench-tuning: $(SETUP)
	$(PY) code/bench.py --tuning $(BENCH_ARGS)

# Inference ("Export and serve"): each framework's own predict against ONNX Runtime on the file its
# exporter wrote, one image and batches of 64. Not part of html.
bench-inference: $(SETUP)
	$(PY) code/bench.py --inference $(if $(FRAMEWORKS),--frameworks $(FRAMEWORKS))

reference-inference: $(SETUP)
	$(PY) code/bench.py --reference --inference

# Where a training step's time goes (the results chapter): PyTorch's profiler by operator, JAX's step
# against its convolutions and products timed alone; about 2 min on 2 cores. Not part of html.
bench-breakdown: .envs/main/.installed
	$(PY) code/bench.py --breakdown

reference-breakdown: .envs/main/.installed
	$(PY) code/bench.py --reference --breakdown

# Scale out: each row with a data-parallel module (code/cnn/cnn_*_parallel.py, run by code/lab/scale_out.py) checked against one process,
# then trained as one process and as two on its framework's own engine. Not part of html.
scale-out: $(SETUP)
	$(PY) code/bench.py --scale-out --resume $(BENCH_ARGS)

reference-scale-out: $(SETUP)
	$(PY) code/bench.py --reference --scale-out --resume --profile quick --dataset $(DATASET)

# Each environment's GPU set installed into a scratch folder, and every library its frameworks' native
# libraries link found there but the driver's libcuda.so.1 (ldd: no GPU needed). Not in CI: it
# downloads every set (several GB) and writes data/gpu-sets.json.
test-gpu-sets: .envs/main/.installed
	$(PYTEST) -m registry $(PYTEST_ARGS)
	$(PY) tools/gpu_sets.py

# What each GPU set takes on disk and which GPUs its CUDA builds have code for (the README's table):
# resolved, not installed; reads the wheels' directories from the registry, and downloads the
# frameworks' CUDA libraries (about 3 GB, into a temporary folder) to read their fat binaries.
gpu-builds: .envs/main/.installed
	$(PY) tools/gpu_builds.py --archs

# Every environment: the system packages, the main one, the Vega JS, and the legacy frameworks'.
envs: $(SETUP)

.envs/system.installed: tools/setup-system.sh
	tools/setup-system.sh
	@mkdir -p .envs && touch $@

# One stamp per set: a change of GPU makes every environment older than its stamp.
.envs/builds-%:
	@mkdir -p .envs && rm -f .envs/builds-* && touch $@

.envs/main/.installed: envs/main/requirements.txt envs/main/requirements-gpu.txt envs/main/requirements-onnx.txt envs/main/requirements-zoo.txt .envs/system.installed .envs/builds-$(GPU)
	tools/make-env.sh main

book/_static/vendor/VERSIONS: tools/vendor-js.sh
	tools/vendor-js.sh

# A legacy environment may fail on its own (no Python 3.6 here, say): the make goes on, and its
# frameworks are reported as skipped, with the reason, until a later make creates it.
.SECONDEXPANSION:
.envs/%/.installed: envs/%/requirements.txt envs/%/requirements-gpu.txt envs/%/requirements-onnx.txt $$(wildcard envs/$$*/requirements-scale.txt envs/$$*/requirements-cuda.txt envs/$$*/requirements-zoo.txt) .envs/system.installed .envs/builds-$(GPU)
	tools/make-env.sh $* || echo "environment $* was not created: its frameworks will be reported as skipped"

test: $(SETUP)
	$(PYTEST) -m "not slow and not onnx_rnn and not onnx_attention and not programs_cnn and not programs_rnn and not programs_resnet and not programs_attention" $(PYTEST_ARGS)

test-slow: $(SETUP)
	$(PYTEST) -m "slow and not fidelity and not registry and not gpu_tools and not programs_cnn and not programs_rnn and not programs_resnet and not programs_attention" $(PYTEST_ARGS)

# Not in CI: the tests whose outcome depends on the CPU (which tuned changes are on, which references
# apply, the peak) with the CPU read as each kind of machine this project runs on (tests/cpuinfo/, by
# ROSETTA_CPUINFO; the frameworks themselves still see this one). Run it when such a test changes.
CPU_KINDS := $(notdir $(wildcard tests/cpuinfo/*))
CPU_KIND_TESTS := tests/test_tuned.py tests/test_reference.py tests/test_bench.py tests/test_report.py tests/test_defaults.py
test-cpu-kinds: $(SETUP)
	@start=$$(date +%s); for kind in $(CPU_KINDS); do echo "== the CPU read as $$kind"; \
		ROSETTA_CPUINFO=tests/cpuinfo/$$kind $(PYTEST) -m "not slow and not onnx_rnn and not onnx_attention and not programs_cnn and not programs_rnn and not programs_resnet and not programs_attention" \
		$(CPU_KIND_TESTS) $(PYTEST_ARGS) || exit 1; done; echo "make test-cpu-kinds took $$(( $$(date +%s) - start )) s"

# Not in CI: tools/gpu-reference.sh, the GPU machine's command, tried here on the CPU with the smoke
# profile (about 2 min). Run it before a GPU session and when the script changes.
test-gpu-tools: $(SETUP)
	$(PYTEST) -m gpu_tools $(PYTEST_ARGS)

# Not in CI: part II's GRU through every ONNX exporter (about 4 min; make reference-rnn commits the
# table, which make test checks is today's). Run it when an export_onnx in code/rnn/ changes.
test-onnx-rnn: $(SETUP)
	$(PYTEST) -m onnx_rnn $(PYTEST_ARGS)

# Part IV's exports, as make test-onnx-rnn's (about 4 min on 2 cores; not in CI): make reference-attention commits the table.
test-onnx-attention: $(SETUP)
	$(PYTEST) -m onnx_attention $(PYTEST_ARGS)

# Not in CI: part I's notebooks but PyTorch's (which make test-slow runs), each training the smoke profile
# outside the repository. Run it when programs.py or a module of code/cnn/ changes.
test-programs-cnn: $(SETUP)
	$(PYTEST) -m programs_cnn $(PYTEST_ARGS)

# Not in CI: part II's notebooks but PyTorch's (which make test-slow runs, as it runs PyTorch's of every part;
# every program is checked statically). Run it when programs.py or code/rnn/ change.
test-programs-rnn: $(SETUP)
	$(PYTEST) -m programs_rnn $(PYTEST_ARGS)

# Not in CI: part III's notebooks but PyTorch's (which make test-slow runs), each extracting the features
# of 64 images outside the repository. Run it when programs.py or code/resnet/ change.
test-programs-resnet: $(SETUP)
	$(PYTEST) -m programs_resnet $(PYTEST_ARGS)

test-programs-attention: $(SETUP)
	$(PYTEST) -m programs_attention $(PYTEST_ARGS)

# Not in CI: the parity tests of `make test` prove the rows equal in seconds; this proves they learn.
test-fidelity: $(SETUP)
	$(PYTEST) -m fidelity $(PYTEST_ARGS)

serve:
	@[ -f _build/html/index.html ] || { echo "no book yet: run make book (or make html) first"; exit 1; }
	$(PY) -m http.server --bind 127.0.0.1 --directory _build/html $(PORT)

# Builds and caches go; results (data/results/) always stay.
clean:
	rm -rf _build data/cache .pytest_cache tests/artifacts
	find . -path ./.envs -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
