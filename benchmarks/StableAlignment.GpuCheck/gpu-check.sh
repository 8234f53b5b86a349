#!/usr/bin/env bash
# GPU check of the CUDA preference-loss kernels, for a GPU machine with no .NET SDK and no internet.
# Lives next to the self-contained published checker (docs/cuda.md says how to publish it):
#   ./gpu-check.sh [--reps N] [--skip-check] [--skip-timing]
# 1. StableAlignment.GpuCheck: kernels vs a float64 reference (outputs poisoned first), then forward+backward
#    timings (median, CUDA events) at N*T = 8x1024, V = 32k/128k, fp32/bf16, against the D2D copy bandwidth.
#    It also checks and times the kernels on fused-output-layer chunks (row forward + in-place backward).
# 2. python3 + PyTorch: the same loss composed from eager operations, timed the same way, with the speed-up;
#    and the three matmuls of a fused chunk (logits h W^T, hidden rows P W, grad_W += P^T h) at the checker's
#    chunk shapes with H = 896, for the kernels' share of a fused chunk.
# Output: gpu-check-report.md (and gpu-check-timings.csv) in the current directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
report=gpu-check-report.md
reps=20
for ((i = 1; i <= $#; i++)); do [ "${!i}" = "--reps" ] && { j=$((i + 1)); reps=${!j}; }; done

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/# GPU: /' | tee "$report" || true
status=0
"$here/StableAlignment.GpuCheck" "$@" | tee -a "$report" || status=$?

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  echo "python3 with CUDA PyTorch not found: eager comparison skipped." | tee -a "$report"
  exit "$status"
fi

REPS="$reps" python3 - <<'PY' | tee -a "$report"
import csv, os, statistics, torch

N, T, G, reps = 8, 1024, 2, int(os.environ.get("REPS", "20"))
scale, margin, weight = 7.0, 1.0, 0.2

def eager_loss(logits, targets, groups, ratings):
    """The contrastive preference loss (token mean, hinge of mean) from PyTorch eager operations."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    tok = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = (targets != -100).float()
    nll = (tok * mask).sum(1) / mask.sum(1)
    best = torch.full((G,), float("-inf"), device=logits.device).scatter_reduce(0, groups, ratings, "amax")
    is_best = (ratings == best[groups]).float()
    sft = torch.zeros(G, device=logits.device).index_add(0, groups, nll * is_best) / \
        torch.zeros(G, device=logits.device).index_add(0, groups, is_best)
    other = 1 - is_best
    d = sft[groups] - nll + margin * (best[groups] - ratings) / scale
    n_other = torch.zeros(G, device=logits.device).index_add(0, groups, other)
    mean_d = torch.zeros(G, device=logits.device).index_add(0, groups, d * other) / n_other.clamp(min=1)
    rank = torch.where(n_other > 0, mean_d.clamp(min=0), torch.zeros_like(mean_d))
    return (sft + weight * rank).mean()

kernel_ms = {}
if os.path.exists("gpu-check-timings.csv"):
    with open("gpu-check-timings.csv") as f:
        for row in csv.DictReader(f):
            kernel_ms[(row["dtype"], int(row["V"]))] = float(row["fwd_bwd_ms"])

print(f"\n## PyTorch {torch.__version__} eager composition, forward + backward (median of {reps}, CUDA events)\n")
print("| dtype | V | eager fwd+bwd ms | kernels fwd+bwd ms | speed-up | eager peak extra memory GiB |")
print("|---|---|---|---|---|---|")
gen = torch.Generator(device="cuda").manual_seed(0)
for dtype in (torch.float32, torch.bfloat16):
    for V in (32768, 131072):
        logits = (3 * torch.randn(N, T, V, device="cuda", generator=gen)).to(dtype).requires_grad_()
        targets = torch.randint(0, V, (N, T), device="cuda", generator=gen)
        groups = torch.arange(N, device="cuda") % G
        ratings = (1 + torch.arange(N, device="cuda") % 7).double().float()
        for _ in range(3):
            logits.grad = None
            eager_loss(logits, targets, groups, ratings).backward()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        times = []
        for _ in range(reps):
            logits.grad = None
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            eager_loss(logits, targets, groups, ratings).backward()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        peak = (torch.cuda.max_memory_allocated() - base) / 2**30
        ms = statistics.median(times)
        name = "float32" if dtype == torch.float32 else "bfloat16"
        k = kernel_ms.get((name, V))
        ks = f"{k:.3f}" if k else "-"
        sp = f"{ms / k:.1f}x" if k else "-"
        print(f"| {name} | {V} | {ms:.3f} | {ks} | {sp} | {peak:.2f} |")
        del logits
        torch.cuda.empty_cache()

fused = []
if os.path.exists("gpu-check-fused-timings.csv"):
    with open("gpu-check-fused-timings.csv") as f:
        fused = [(r["dtype"], int(r["rows"]), int(r["V"]), float(r["kernels_ms"])) for r in csv.DictReader(f)]
if fused:
    H = 896
    print(f"\n## Fused output layer: the kernels' share of one chunk at H = {H} (median of {reps}, CUDA events)\n")
    print("| dtype | chunk rows × V | matmuls ms (h W^T, P W, P^T h) | kernels ms | kernels' share | matmul TFLOP/s |")
    print("|---|---|---|---|---|---|")
    for name, rows, V, k in fused:
        dtype = torch.float32 if name == "float32" else torch.bfloat16
        h = torch.randn(rows, H, device="cuda", dtype=dtype)
        w = (0.02 * torch.randn(V, H, device="cuda")).to(dtype)
        logits = torch.empty(rows, V, device="cuda", dtype=dtype)
        rows_out = torch.empty(rows, H, device="cuda", dtype=dtype)
        grad_w = torch.zeros(V, H, device="cuda", dtype=dtype)
        def chunk():
            torch.mm(h, w.t(), out=logits)
            torch.mm(logits, w, out=rows_out)
            grad_w.addmm_(logits.t(), h)
        for _ in range(3):
            chunk()
        times = []
        for _ in range(reps):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            chunk()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        ms = statistics.median(times)
        tflops = 3 * 2 * rows * H * V / (ms * 1e-3) / 1e12
        print(f"| {name} | {rows} × {V} | {ms:.3f} | {k:.3f} | {100 * k / (k + ms):.0f}% | {tflops:.0f} |")
        del h, w, logits, rows_out, grad_w
        torch.cuda.empty_cache()
PY
echo "Report written to $report"
exit "$status"
