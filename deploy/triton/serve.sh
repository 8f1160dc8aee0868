#!/bin/sh
# The Triton image's command: tritonserver with the flags `python -m bot triton` uses
# (nlu/triton/server.py; tests/test_deploy_manifests.py runs this script and compares them).
# Every API but health, metadata and inference needs the header triton-api-key: Triton's own
# docs warn that an open model-repository API runs whatever code a caller loads. Without
# TRITON_API_KEY the server does not start. It listens on every interface of the container;
# only Rasa may reach it (compose: no published ports; Kubernetes: a NetworkPolicy).
set -eu
: "${TRITON_API_KEY:?must be set (deploy/README.md, Secrets): without it the model-repository API would be open}"
restricted="model-repository,model-config,shared-memory,statistics,trace,logging:triton-api-key=$TRITON_API_KEY"
exec tritonserver \
    --model-repository=/models \
    --cache-config=local,size=16777216 \
    --model-control-mode=explicit \
    --load-model='*' \
    --strict-readiness=false \
    --http-address=0.0.0.0 \
    --http-port=8000 \
    --grpc-address=0.0.0.0 \
    --grpc-port=8001 \
    --metrics-address=0.0.0.0 \
    --metrics-port=8002 \
    --http-restricted-api="$restricted" \
    --grpc-restricted-protocol="$restricted" \
    --allow-metrics=true \
    --exit-on-error=false
