#!/usr/bin/env bash
# Seed corpora (generated, not committed): the repository's model files
# and Keras fixtures, a tiny CIFAR-10 archive (constant pixels, so it
# compresses to a few hundred bytes), and the checkpoint of a 40-parameter
# model trained one step on it: small seeds keep libFuzzer fast.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/cifar10 corpus/checkpoint corpus/model_toml corpus/model_json
cp ../assets/models/*.toml ../assets/models/examples/*.toml corpus/model_toml/
cp ../tests/fixtures/keras/{mlp,mlp_sequential,conv,cnn,residual}.json corpus/model_json/
tmp=$(mktemp -d)
python3 - "$tmp" <<'PY'
import io, os, random, sys, tarfile
root = sys.argv[1]
random.seed(0)
names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
classes = "airplane automobile bird cat deer dog frog horse ship truck".split()
tar_path = os.path.join(root, "cifar-10-binary.tar.gz")
with tarfile.open(tar_path, "w:gz") as t:
    for n in names:
        data = bytes(b for _ in range(2) for b in [random.randrange(10)] + [128] * 3072)
        info = tarfile.TarInfo(f"cifar-10-batches-bin/{n}"); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    meta = ("\n".join(classes) + "\n\n").encode()
    info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt"); info.size = len(meta)
    t.addfile(info, io.BytesIO(meta))
PY
cp "$tmp/cifar-10-binary.tar.gz" corpus/cifar10/tiny.tar.gz
cat > "$tmp/tiny.toml" <<'TOML'
[[layers]]
type = "GlobalAveragePooling2D"

[[layers]]
type = "Dense"
units = 10
activation = "softmax"
TOML
cargo run --release --quiet --manifest-path ../Cargo.toml -- train --model "$tmp/tiny.toml" --epochs 1 \
    --steps-per-epoch 1 --batch-size 2 --data "$tmp/cifar-10-binary.tar.gz" \
    --out "$tmp/run" --save corpus/checkpoint/tiny.safetensors --backend cpu >/dev/null
rm -rf "$tmp"
