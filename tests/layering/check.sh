#!/usr/bin/env bash
# Fails when a folder includes what design.md §3 says it knows nothing of:
#   core/      never transport/, dialect/, api/, auth/, app/, store/ (the interface included)
#   store/     never transport/, dialect/, api/, app/
#   auth/      never transport/, dialect/, api/, app/, store/
#   transport/ never dialect/, api/, app/, store/
#   api/       never dialect/, app/, and no Beast/Asio
#   dialect/X/ never another dialect
set -u
cd "$(dirname "$0")/../../src" || exit 2
fail=0
check() {  # folder, forbidden regex
  local hits
  hits=$(grep -rnE "#include [<\"]($2)" "$1" --include='*.h' --include='*.cc' 2>/dev/null)
  if [[ -n $hits ]]; then
    echo "layering: $1 must not include $2:"
    echo "$hits"
    fail=1
  fi
}
check core 'transport/|dialect/|api/|auth/|app/|store/'
check store 'transport/|dialect/|api/|app/'
check auth 'transport/|dialect/|api/|app/|store/'
check transport 'dialect/|api/|app/|store/'
check api 'dialect/|app/|boost/asio|boost/beast|transport/net\.h|transport/server'
for d in dialect/*/; do
  name=$(basename "$d")
  [[ $name == common ]] && continue
  others=$(ls dialect | grep -vxE "$name|common|dialect\.h|CMakeLists\.txt" | paste -sd'|')
  [[ -n $others ]] && check "$d" "dialect/($others)/"
done
# Core headers stay free of Asio/Beast (compile time, and the layer rule).
check core 'boost/asio|boost/beast'
if ((fail)); then exit 1; fi
echo "layering: ok"
