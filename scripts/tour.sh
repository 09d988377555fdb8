#!/usr/bin/env bash
# The main job on the bundled sample model (stories260K, a real llama.cpp GGUF): set up, build, then
# look inside it with the CLI — the tensor index, the spectra of every weight, and the MPO bond-cut
# entanglement of one layer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
npm run --silent build >/dev/null
MODEL=media/sample/stories260K.gguf
CLI="node out/cli.js"
echo "== tensor-scalpel inspect $MODEL"
$CLI inspect "$MODEL"
if $CLI help | grep -q '^  spectra'; then
  echo; echo "== tensor-scalpel spectra $MODEL"
  $CLI spectra "$MODEL"
fi
if $CLI help | grep -q '^  mpo'; then
  echo; echo "== tensor-scalpel mpo $MODEL --tensor blk.0.ffn_up.weight --sites 2 --chi 8"
  $CLI mpo "$MODEL" --tensor blk.0.ffn_up.weight --sites 2 --chi 8
fi
