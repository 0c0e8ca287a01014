#!/usr/bin/env bash
# Runs the networks and training-step tests under TensorFlow 2.20 (the newest version with a Cloud TPU wheel,
# tensorflow-tpu 2.20.0), in a fresh virtual environment, against this working tree.
#
#   tools/check_tf220.sh [VENV_DIR]        # default: a new temporary folder, removed at the end
#
# The environment: tensorflow==2.20.0 and setup.py's other requirements, pinned by constraints.txt except the
# packages whose versions follow TensorFlow's (tensorflow, tensorboard, tensorboard-data-server, tf_keras),
# which pip resolves for 2.20. It prints the versions pip chose, the test summary and the time taken; the exit
# status is pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
if [[ $# -ge 1 ]]; then
  venv="$1"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  venv="$tmp/venv"
fi
TF_VERSION="${TF_VERSION:-2.20.0}"
start=$(date +%s)
python3 -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
python -m pip install -q --upgrade pip
constraints="$(dirname "$venv")/constraints-tf${TF_VERSION}.txt"
grep -v -i -E '^(tensorflow|tensorboard|tensorboard-data-server|tf_keras|tf-keras)==' constraints.txt > "$constraints"
# --no-deps for the project itself would skip its requirements; install it editable (nothing is written to the
# tree but the ignored dvdgan_tf.egg-info) with its requirements, TensorFlow pinned to the version under test.
python -m pip install -q -c "$constraints" "tensorflow==${TF_VERSION}" -e . pytest pytest-xdist scipy
python -m pip check
echo "--- versions"
python - <<'EOF'
import keras, numpy, tensorflow as tf
print(f"tensorflow {tf.__version__} (git {tf.version.GIT_VERSION}), keras {keras.__version__}, numpy {numpy.__version__}")
EOF
python -m pip freeze | grep -i -E '^(tensorflow|tensorboard|keras|tf.keras|numpy|protobuf|ml.dtypes|gin-config)=='
installed=$(date +%s)
echo "--- tests (environment made in $((installed - start)) s)"
# The networks (tests/test_nets_*.py, remat included) and the training step and loop (losses, loop,
# reproducibility; replicas: 1 vs 2, steps per loop, compiled steps, bfloat16). pytest.ini's -n 2 needs pytest-xdist.
set +e
python -m pytest -q -p no:cacheprovider tests/test_nets_*.py tests/test_training_losses.py \
  tests/test_training_loop.py tests/test_training_reproducibility.py tests/test_training_replicas.py
status=$?
set -e
echo "--- tests took $(( $(date +%s) - installed )) s; exit status $status (TensorFlow ${TF_VERSION})"
exit $status
