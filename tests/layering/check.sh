#!/usr/bin/env bash
# Fails when a folder includes what design.md §3 says it knows nothing of:
#   core/      never transport/, dialect/, api/, auth/, app/, store/ (the interface included:
#              stricter than "no store back end"), nor Asio/Beast
#   store/     never transport/, dialect/, api/, app/
#   auth/      never transport/, dialect/, api/, app/, store/
#   transport/ never dialect/, api/, app/, store/
#   api/       never dialect/, app/, and no Beast/Asio
#   dialect/common/ (the socket core every dialect uses) never a dialect/<name>/
#   dialect/X/ never another dialect
#   dialect/X/ is private to X: outside it only app/ (the one registration line per dialect,
#              plus its configuration table) and X's own fuzz targets (fuzz/X_*_fuzz.cc) include
#              its headers; everything else reaches a dialect through dialect/dialect.h
# and, once the lead flips require_dialect_tests, that every dialect/X/ other than common/
# ships a codec test (*codec_test.cc), a socket test (*socket_test.cc) and fuzz/X_decode_fuzz.cc.
#
# Switches (the lead flips them to 1 when the tree is there; 0 prints the findings as warnings):
require_dialect_tests=1  # every dialect ships codec, socket and fuzz tests
strict_dialect_private=1 # dialect folders are private to app/ and their fuzz targets
set -u
cd "$(dirname "$0")/../.." || exit 2
fail=0
warned=0
# Prints the hits of `grep` output as a finding; an error unless $3 (strict) is 0.
report() {  # message, hits, strict
  [[ -z $2 ]] && return
  if (($3)); then
    echo "layering: $1:"
    fail=1
  else
    echo "layering: warning (not yet enforced): $1:"
    warned=1
  fi
  echo "$2" | sed 's/^/  /'
}
check() {  # folder under src/, forbidden regex
  local hits
  hits=$(cd src && grep -rnE "#include [<\"]($2)" "$1" --include='*.h' --include='*.cc' 2>/dev/null)
  report "$1 must not include $2" "$hits" 1
}
check core 'transport/|dialect/|api/|auth/|app/|store/'
check store 'transport/|dialect/|api/|app/'
check auth 'transport/|dialect/|api/|app/|store/'
check transport 'dialect/|api/|app/|store/'
check api 'dialect/|app/|boost/asio|boost/beast|transport/net\.h|transport/server'
# Core headers stay free of Asio/Beast (compile time, and the layer rule).
check core 'boost/asio|boost/beast'

# The dialects: every folder of src/dialect/ is one dialect, except common/.
dialects=()
for d in src/dialect/*/; do
  name=$(basename "$d")
  [[ $name == common ]] || dialects+=("$name")
done
if [[ -d src/dialect/common ]] && ((${#dialects[@]})); then
  check dialect/common "dialect/($(IFS='|'; echo "${dialects[*]}"))/"
fi
for name in "${dialects[@]}"; do
  others=$(printf '%s\n' "${dialects[@]}" | grep -vx "$name" | paste -sd'|')
  [[ -n $others ]] && check "dialect/$name" "dialect/($others)/"
done

# dialect/X/ is private to X (and app/, and X's fuzz targets).
for name in "${dialects[@]}"; do
  hits=$(find src fuzz tests bench \( -name '*.cc' -o -name '*.h' \) 2>/dev/null | sort |
    grep -vE "^src/dialect/$name/|^src/app/|^fuzz/${name}_[a-z0-9_]*_fuzz\.cc$" |
    xargs -r grep -nE "#include [<\"](src/)?dialect/$name/" 2>/dev/null)
  report "only src/dialect/$name/, src/app/ and fuzz/${name}_*_fuzz.cc include dialect/$name/" \
    "$hits" "$strict_dialect_private"
done

# Each dialect ships its tests: codec, socket (state machine) and a decode fuzz target.
for name in "${dialects[@]}"; do
  missing=()
  compgen -G "src/dialect/$name/*codec_test.cc" >/dev/null || missing+=("src/dialect/$name/*codec_test.cc")
  compgen -G "src/dialect/$name/*socket_test.cc" >/dev/null || missing+=("src/dialect/$name/*socket_test.cc")
  [[ -f fuzz/${name}_decode_fuzz.cc ]] || missing+=("fuzz/${name}_decode_fuzz.cc")
  ((${#missing[@]})) &&
    report "dialect $name must ship a codec test, a socket test and a decode fuzz target; missing" \
      "$(printf '%s\n' "${missing[@]}")" "$require_dialect_tests"
done

if ((fail)); then exit 1; fi
if ((warned)); then echo "layering: ok (with warnings above, not yet enforced)"; else echo "layering: ok"; fi
