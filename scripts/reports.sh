#!/usr/bin/env bash
# `make reports`: Rasa's own evaluation of the support bot into docs/reports/ (its README says what
# each file is).
#   core/  the dialogue policies of config.yml, retrained past Rasa's cache, scored by `rasa test core`
#          on the held-out conversations in tests/stories/; ted_training.log keeps TEDPolicy's lines
#          from the training log (start, last epoch with its training accuracy, end).
#   nlu/   the NLU (fine-tuned only when it changed) scored by `rasa test nlu` on the held-out
#          examples in tests/nlu/, through the Triton of endpoints.yml, started here unless one answers.
set -euo pipefail
VENV=${VENV:-.venv}
RASA=$VENV/bin/rasa
PY=$VENV/bin/python
work=.run/reports
mkdir -p "$work"
rm -rf docs/reports/core docs/reports/nlu
mkdir -p docs/reports/core

echo "Training the dialogue policies (log: $work/train-core.log)"
RASA_MAX_CACHE_SIZE=0 "$RASA" train core --out "$work" --fixed-model-name core 2>&1 | tr '\r' '\n' > "$work/train-core.log"
# The progress bar rewrites its line: keep its last state, TEDPolicy's final epoch.
awk "/Starting to train component 'TEDPolicy'/ {print} /Epochs: 100%/ {last = \$0}
  /Finished training component 'TEDPolicy'/ {sub(/^.*Epochs:/, \"Epochs:\", last); print last; print}" \
  "$work/train-core.log" > docs/reports/core/ted_training.log
cat docs/reports/core/ted_training.log
"$RASA" test core --stories tests/stories --model "$work/core.tar.gz" --out docs/reports/core
rm -f docs/reports/core/TEDPolicy_*  # TEDPolicy's own entity report: empty, its tagger is off (config.yml)

"$RASA" train nlu --out "$work" --fixed-model-name nlu
eval "$("$PY" -m bot secrets)"
port=$("$PY" -c 'from nlu.settings import TritonSettings; print(TritonSettings.load().http_port)')
ready="http://localhost:$port/v2/health/ready"
if ! curl -sf "$ready"; then
  echo "Starting Triton (log: $work/triton.log)"
  "$PY" -m bot triton > "$work/triton.log" 2>&1 &
  trap 'kill $!' EXIT
  for _ in $(seq 120); do curl -sf "$ready" && break; sleep 1; done
  curl -sf "$ready" || { echo "Triton did not start: see $work/triton.log" >&2; exit 1; }
fi
"$RASA" test nlu --nlu tests/nlu --model "$work/nlu.tar.gz" --out docs/reports/nlu
