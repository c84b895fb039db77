#!/usr/bin/env bash
# Re-pin the images: for every pulled image in docker-compose.yml and every FROM in the
# repository's Dockerfiles, ask the registry which digest `name:tag` points to now and write
# `name:tag@sha256:<digest>`. For an operator with registry access; not run in CI.
#
#   scripts/pin-images.sh           # rewrite every pin to the registry's current digest
#   scripts/pin-images.sh --check   # change nothing; exit 1 if any pin differs or is missing
#
# The digest is resolved by `docker buildx imagetools inspect` or, without buildx, by
# `crane digest`. Both give the multi-platform index digest. PIN_IMAGES_TOOL=buildx|crane
# picks one. Images built here (tag `local`), build stages and `scratch` are skipped. After a
# rewrite, record the new digests in deploy/IMAGES.md and run tests/test_compose.py.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

mode="write"
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
[ "$#" -le 1 ] || { usage >&2; exit 2; }

tool="${PIN_IMAGES_TOOL:-}"
if [ -z "$tool" ]; then
  if docker buildx version >/dev/null 2>&1; then
    tool=buildx
  elif command -v crane >/dev/null 2>&1; then
    tool=crane
  else
    echo "pin-images: needs 'docker buildx' or 'crane' (and registry access)" >&2
    exit 2
  fi
fi
case "$tool" in
  buildx | crane) ;;
  *) echo "pin-images: PIN_IMAGES_TOOL must be buildx or crane, not '$tool'" >&2; exit 2 ;;
esac

# The digest `name:tag` points to now, "sha256:<64 hex>".
resolve() {
  local out
  if [ "$tool" = buildx ]; then
    out=$(docker buildx imagetools inspect --format '{{json .Manifest.Digest}}' "$1") || return 1
    out=${out//\"/}
  else
    out=$(crane digest "$1") || return 1
  fi
  out=${out//[[:space:]]/}
  if [[ ! $out =~ ^sha256:[0-9a-f]{64}$ ]]; then
    echo "pin-images: $tool answered '$out' for $1, not a sha256 digest" >&2
    return 1
  fi
  printf '%s\n' "$out"
}

# Image references, one per line: compose `image:` values, then FROM images (build stages
# named by an earlier `AS` are not images).
compose_refs() {
  awk '/^[[:space:]]*image:[[:space:]]*[^[:space:]]/ {
    v = $0
    sub(/^[[:space:]]*image:[[:space:]]*/, "", v)
    sub(/[[:space:]]+#.*$/, "", v)
    gsub(/["\047]/, "", v)
    print v
  }' "$1"
}
dockerfile_refs() {
  awk 'toupper($1) == "FROM" {
    image = ""
    for (i = 2; i <= NF; i++) {
      if ($i ~ /^--/) continue
      if (image == "") { image = $i; continue }
      if (toupper($i) == "AS" && i < NF) stage[tolower($(i + 1))] = 1
      break
    }
    if (image != "" && !(tolower(image) in stage) && image != "scratch") print image
  }' "$1"
}

files=(docker-compose.yml)
while IFS= read -r path; do
  files+=("$path")
done < <(find . \( -path ./.git -o -path ./.venv -o -path ./node_modules \) -prune -o -type f \
  \( -name Dockerfile -o -name '*.Dockerfile' -o -name 'Dockerfile.*' \) \
  ! -name '*.dockerignore' -print | sed 's|^\./||' | sort)

# Every (file, reference) pair, then each distinct name:tag resolved once.
entries=()
declare -A digest_of=() seen=()
for file in "${files[@]}"; do
  if [ "$file" = docker-compose.yml ]; then
    refs=$(compose_refs "$file")
  else
    refs=$(dockerfile_refs "$file")
  fi
  while IFS= read -r ref; do
    [ -n "$ref" ] || continue
    name_tag=${ref%%@*}
    last=${name_tag##*/}
    if [[ $ref == *'$'* ]]; then
      echo "pin-images: $file: $ref is set by a variable; pin it by hand" >&2
      exit 2
    fi
    if [[ $last != *:* ]]; then
      echo "pin-images: $file: $ref has no tag; give it one to pin" >&2
      exit 2
    fi
    [ "${last##*:}" != local ] || continue
    [ -z "${seen[$file $ref]:-}" ] || continue
    seen[$file $ref]=1
    entries+=("$file"$'\t'"$ref")
    digest_of[$name_tag]=""
  done <<<"$refs"
done

failed=0
for name_tag in "${!digest_of[@]}"; do
  if digest=$(resolve "$name_tag"); then
    digest_of[$name_tag]=$digest
  else
    echo "pin-images: could not resolve $name_tag" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 2

# Replace `old` by `new` where it stands as a whole word (between spaces, quotes or line ends).
replace_ref() {
  local file=$1 old=$2 new=$3 tmp
  tmp=$(mktemp)
  awk -v old="$old" -v new="$new" '
    function delim(c) { return c == "" || c ~ /[[:space:]"\047]/ }
    {
      rest = $0; out = ""
      while ((i = index(rest, old)) > 0) {
        before = i > 1 ? substr(rest, i - 1, 1) : substr(out, length(out), 1)
        after = substr(rest, i + length(old), 1)
        if (delim(before) && delim(after)) out = out substr(rest, 1, i - 1) new
        else out = out substr(rest, 1, i + length(old) - 1)
        rest = substr(rest, i + length(old))
      }
      print out rest
    }' "$file" >"$tmp"
  cat "$tmp" >"$file"
  rm -f "$tmp"
}

differ=0
for entry in "${entries[@]}"; do
  file=${entry%%$'\t'*}
  ref=${entry#*$'\t'}
  name_tag=${ref%%@*}
  pinned=""
  [ "$ref" = "$name_tag" ] || pinned=${ref#*@}
  want="$name_tag@${digest_of[$name_tag]}"
  if [ "$ref" = "$want" ]; then
    echo "ok       $file: $ref"
    continue
  fi
  differ=1
  if [ "$mode" = check ]; then
    echo "differs  $file: $name_tag is pinned to ${pinned:-nothing}, the registry has ${digest_of[$name_tag]}"
  else
    replace_ref "$file" "$ref" "$want"
    echo "pinned   $file: $want (was ${pinned:-unpinned})"
  fi
done

if [ "$mode" = check ]; then
  exit "$differ"
fi
if [ "$differ" -eq 1 ]; then
  echo "Record the new digests and where they came from in deploy/IMAGES.md, then run" \
    ".venv/bin/python -m pytest -q tests/test_compose.py."
fi
