#!/usr/bin/env bash
# Renders an HTML report with headless Chromium and fails if the screenshot is blank.
#
#   Benchmarks/html-render-check.sh REPORT.html [SCREENSHOT.png]
#
# Needs the Debian package `chromium` (apt-get install -y chromium). "Blank" means fewer than 2% of the pixels
# differ from the page background, or fewer than 8 distinct colours: a page that failed to render, or rendered
# nothing but its background. The PNG is decoded with python3's zlib (no imaging library needed).
set -euo pipefail
report=${1:?usage: html-render-check.sh REPORT.html [SCREENSHOT.png]}
[[ -s "$report" ]] || { echo "html-render-check: $report is missing or empty" >&2; exit 66; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n "$browser" ]] || { echo "html-render-check: chromium not found (apt-get install -y chromium)" >&2; exit 69; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
png=${2:-$work/shot.png}
abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
# --no-sandbox: CI runs as root; no network is needed, the report is self-contained.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$work/profile" --window-size=1280,1600 --screenshot="$png" "file://$abs" \
    > "$work/chromium.log" 2>&1 || { cat "$work/chromium.log" >&2; echo "html-render-check: chromium failed" >&2; exit 1; }
[[ -s "$png" ]] || { echo "html-render-check: no screenshot written" >&2; exit 1; }

python3 - "$png" <<'EOF'
import struct, sys, zlib
from collections import Counter

data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("html-render-check: not a PNG")
pos, chunks = 8, {}
idat = b""
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    pos += 12 + length
    if kind == b"IHDR":
        width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
if depth != 8 or ctype not in (2, 6):
    sys.exit(f"html-render-check: unsupported PNG (depth {depth}, colour type {ctype})")
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = width * bpp
rows, prev, i = [], bytearray(stride), 0
for _ in range(height):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
colours = Counter()
for y in range(0, height, 2):
    row = rows[y]
    for x in range(0, width, 2):
        colours[row[x * bpp:x * bpp + 3]] += 1
total = sum(colours.values())
background, count = colours.most_common(1)[0]
ink = 1 - count / total
print(f"html-render-check: {width}x{height}, {len(colours)} colours, {ink:.1%} non-background pixels")
if len(colours) < 8 or ink < 0.02:
    sys.exit("html-render-check: the screenshot is blank")
EOF
