#!/bin/sh
# Create env/*.env from env/*.env.example, replacing every `change-me-<name>` placeholder with
# one random secret per name (the same secret everywhere the placeholder appears, so the
# database passwords in postgres.env and in each service's DATABASE_URL agree).
# Existing env files are kept; pass --force to regenerate them.
set -eu
cd "$(dirname "$0")/env"
force="${1:-}"
tokens=$(cat ./*.env.example | grep -o 'change-me-[a-z0-9-]*' | sort -u)
sed_script=""
for token in $tokens; do
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-40)
  sed_script="${sed_script}s/${token}\\b/${secret}/g;"
done
for example in ./*.env.example; do
  target="${example%.example}"
  if [ -e "$target" ] && [ "$force" != "--force" ]; then
    echo "keep    $target"
    continue
  fi
  sed -e "$sed_script" "$example" > "$target"
  chmod 600 "$target"
  echo "created $target"
done
