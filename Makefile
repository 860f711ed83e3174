# The two commands: `make analyze MUSIC=<dir> [DB=<file>]` and `make test`.
# Each sets up what it needs first: uv (installed into .tools/ when missing) and the locked
# environment in .venv/.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
DB ?= playlista.duckdb
MUSIC ?=
# The playlists deployment: its YAML file (none: the library in clusters) and output folder.
PLAYLISTS ?=
PLAYLIST_DIR ?= playlists

export UV_PYTHON_DOWNLOADS := never
# Byte-compile the environment once at install: every process (flow, workers, Prefect's
# server, decoders) would otherwise compile thousands of modules again at each start.
export UV_COMPILE_BYTECODE := 1
# Trust the machine's certificate store (a proxy's CA lives there), as pip does.
export UV_SYSTEM_CERTS := true

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif

# The local Prefect server (`make server`) keeps its database and settings here.
SERVER_HOME ?= $(CURDIR)/.prefect-server
SERVER_HOST ?= 127.0.0.1
SERVER_PORT ?= 4200
PREFECT_API_URL ?= http://$(SERVER_HOST):$(SERVER_PORT)/api
PREFECT_SERVER_ENV := PREFECT_HOME="$(SERVER_HOME)" PREFECT_SERVER_ANALYTICS_ENABLED=false \
	PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120 PREFECT_LOGGING_EXTRA_LOGGERS=playlista

# Benchmarks: a larger corpus of real music from Debian's packages (about 140 tracks, 12 h).
SHARED_CORPUS ?= ../shared/corpus
BENCH_CORPUS ?= .bench-corpus
BENCH_TRACKS ?= 24
# The accuracy evaluation set (bench/evalset/SOURCES.md): 192 renders and recordings, 3.2 h.
EVALSET ?= .bench-evalset
ACCURACY_JOBS ?= 2

.PHONY: setup analyze test lint browser server deploy worker faults
.PHONY: bench bench-corpus bench-scaling bench-memory bench-rescan bench-accuracy bench-evalset
.PHONY: bench-loudness bench-scheduler bench-small
.PHONY: bench-all

setup: .venv/.synced

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==0.13.9"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python "$(PYTHON)"
	touch $@

analyze: setup
	@if [ -z "$(MUSIC)" ]; then echo "usage: make analyze MUSIC=<dir> [DB=<file>]" >&2; exit 2; fi
	.venv/bin/playlista analyze $(MUSIC) --db "$(DB)"

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# A real Prefect server with its UI on http://127.0.0.1:4200, in the foreground.
# SERVER_HOST=<this machine's address> opens it to Dask workers on other machines.
server: setup
	$(PREFECT_SERVER_ENV) .venv/bin/prefect server start --host $(SERVER_HOST) --port $(SERVER_PORT)

# Apply the deployments in prefect.yaml (nightly, full-rescan, playlists) for MUSIC and DB.
deploy: setup
	@if [ -z "$(MUSIC)" ]; then echo "usage: make deploy MUSIC=<dir> [DB=<file>]" >&2; exit 2; fi
	PREFECT_API_URL=$(PREFECT_API_URL) .venv/bin/prefect --no-prompt work-pool create playlista \
		--type process --overwrite
	PREFECT_API_URL=$(PREFECT_API_URL) PLAYLISTA_CHECKOUT="$(CURDIR)" \
		PLAYLISTA_MUSIC="$(abspath $(MUSIC))" PLAYLISTA_DB="$(abspath $(DB))" \
		PLAYLISTA_PLAYLISTS="$(if $(PLAYLISTS),$(abspath $(PLAYLISTS)))" \
		PLAYLISTA_PLAYLIST_DIR="$(abspath $(PLAYLIST_DIR))" \
		.venv/bin/prefect --no-prompt deploy --all

# A worker on the `playlista` pool: it runs the deployments' flow runs as processes.
worker: setup
	PREFECT_API_URL=$(PREFECT_API_URL) $(PREFECT_SERVER_ENV) \
		.venv/bin/prefect worker start --pool playlista --type process

# The fault-tolerance matrix: one line per fault with its outcome.
faults: setup
	.venv/bin/pytest -m fault -q -p no:cacheprovider

# The report test opens the HTML report in headless Chromium (Debian's package; CI is root).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends chromium)

test: lint browser
	.venv/bin/pytest

# Throughput side by side with bliss-rs, Essentia's MusicExtractor and naive librosa, with
# playlista's time by stage and peak memory.
bench: setup bench-corpus
	.venv/bin/python bench/throughput.py $(BENCH_CORPUS) --tracks $(BENCH_TRACKS)

bench-corpus:
	@if [ -z "$$(ls -A $(BENCH_CORPUS) 2>/dev/null)" ]; then \
		apt-get update -qq && bash $(SHARED_CORPUS)/build-bench-corpus $(BENCH_CORPUS); fi

# 1 against 2 workers, batch sizes, in-flight windows.
bench-scaling: setup bench-corpus
	.venv/bin/python bench/scaling.py $(BENCH_CORPUS)

# Peak memory of the flow and a worker on tracks of 4 minutes to 2 hours.
bench-memory: setup bench-corpus
	.venv/bin/python bench/memory.py $(BENCH_CORPUS)

# A rescan of 100,000 unchanged files.
bench-rescan: setup
	.venv/bin/python bench/rescan.py

# Tempo and key against the corpus's and the evaluation set's annotations, beside Essentia's
# defaults, on the same decoded audio.
bench-accuracy: setup bench-evalset
	.venv/bin/python bench/accuracy.py --corpus $(SHARED_CORPUS) --evalset $(EVALSET) \
		--jobs $(ACCURACY_JOBS) --cache $(EVALSET)/.cache/estimates.jsonl

# Render the evaluation set into EVALSET (fluidsynth and the FluidR3 SoundFont from apt-get,
# the scores from music21's corpus, MIDI files and songs from Debian's packages).
bench-evalset: setup
	@command -v fluidsynth >/dev/null && [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends \
			fluidsynth fluid-soundfont-gm)
	.venv/bin/python bench/evalset/build.py $(EVALSET)

# CPU time of the loudness stage per 4-minute track, with and without the true peak.
bench-loudness: setup bench-corpus
	.venv/bin/python bench/loudness.py $(BENCH_CORPUS) --tracks $(BENCH_TRACKS)

# A nightly run that finds 3 new files and one that finds nothing, end to end.
bench-small: setup bench-corpus
	.venv/bin/python bench/small_runs.py $(BENCH_CORPUS)

# The Dask scheduler's memory over 30 flow runs against one long-lived cluster.
bench-scheduler: setup
	.venv/bin/python bench/scheduler_memory.py --corpus $(SHARED_CORPUS)

bench-all: bench bench-scaling bench-memory bench-rescan bench-accuracy bench-loudness \
	bench-scheduler bench-small
