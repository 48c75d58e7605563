#!/bin/sh
# More training photos for `neurodeploy train --data DIR`: the photographs among the wallpapers of
# Debian's plasma-workspace-wallpapers and ukui-wallpapers packages, unpacked into DIR.
#
#   scripts/wallpapers.sh DIR [MAX_SIDE]     # e.g. scripts/wallpapers.sh ~/wallpapers 1280
#
# Needs apt-get (Debian or Ubuntu; no root: `apt-get download` fetches into the current folder),
# dpkg-deb and a Python with Pillow (PYTHON, default .venv/bin/python). Nothing is installed.
#
# What is kept, by this rule: a wallpaper is kept when its picture is a camera photograph of a real
# scene; renderings, vector art and paintings are left out. The rule was applied by eye, image by image,
# to the packages below (a contact sheet of all 42 pictures), because no pixel statistic separated them:
# the sensor-noise estimate of the photographs (Immerkaer's, grey levels) spans 0.33 to 2.7 and that of the
# renderings 0.0 to 8.9. The kept photographs are PHOTOS below; each wallpaper's largest file (its original,
# 2560x1600 for all of them; the smaller ones are rescales or crops of it) is written as
# DIR/plasma-NAME.jpg, resized with Lanczos so that its longer side is at most MAX_SIDE (default 1280:
# about the pixel scale of the 512-px validation photos; 0 keeps the original size).
#   plasma-workspace-wallpapers 4:5.27.5-2 (Debian bookworm): 11 of its 30 wallpapers are photographs.
#     debian/copyright: GPL-2+ (2014 KDE Visual Design Group); each wallpaper's metadata names its author
#     and licence: all 11 kept photographs say LGPLv3.
#   ukui-wallpapers 20.04.3-1.1: none of its 12 backgrounds is a photograph (renderings and vector art),
#     so none is kept. debian/copyright: CC-BY-SA-3.0.
# The copyright files and each kept wallpaper's metadata are copied to DIR/LICENSES/. The builtin
# validation photos (scikit-image's astronaut, coffee, camera, grass) are not among them.
set -eu

out=${1:?usage: scripts/wallpapers.sh DIR [MAX_SIDE]}
max_side=${2:-1280}
python=${PYTHON:-.venv/bin/python}
PHOTOS="BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite OneStandsOut Path summer_1am"

"$python" -c "import PIL" 2>/dev/null || { echo "error: $python has no Pillow; set PYTHON=a python with Pillow" >&2; exit 2; }
command -v apt-get >/dev/null || { echo "error: apt-get not found: this script needs Debian or Ubuntu" >&2; exit 2; }
case $max_side in ''|*[!0-9]*) echo "error: MAX_SIDE must be a whole number of pixels, got $max_side" >&2; exit 2;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q plasma-workspace-wallpapers ukui-wallpapers >/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
root=$work/root/usr/share

mkdir -p "$out/LICENSES"
for package in plasma-workspace-wallpapers ukui-wallpapers; do
    cp "$root/doc/$package/copyright" "$out/LICENSES/$package.copyright"
done
for name in $PHOTOS; do
    images=$root/wallpapers/$name/contents/images
    [ -d "$images" ] || { echo "error: $name is not in this version of plasma-workspace-wallpapers" >&2; exit 1; }
    # the largest picture by pixel count (files are named WIDTHxHEIGHT.jpg)
    largest=$(ls "$images" | awk -Fx '{split($2, h, "."); print $1 * h[1], $0}' | sort -n | tail -1 | cut -d' ' -f2)
    for meta in "$root/wallpapers/$name"/metadata.*; do cp "$meta" "$out/LICENSES/plasma-$name.${meta##*.}"; done
    "$python" - "$images/$largest" "$out/plasma-$name.jpg" "$max_side" <<'PY'
import sys
from PIL import Image

source, target, max_side = sys.argv[1], sys.argv[2], int(sys.argv[3])
image = Image.open(source).convert("RGB")
if max_side and max(image.size) > max_side:
    scale = max_side / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
image.save(target, quality=95)
PY
done
dpkg-deb -f "$work"/plasma-workspace-wallpapers_*.deb Package Version > "$out/LICENSES/SOURCES.txt"
dpkg-deb -f "$work"/ukui-wallpapers_*.deb Package Version >> "$out/LICENSES/SOURCES.txt"
echo "$(ls "$out"/plasma-*.jpg | wc -l) photographs in $out (licences in $out/LICENSES)"
