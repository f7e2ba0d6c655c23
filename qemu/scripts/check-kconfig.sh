#!/bin/sh
# check-kconfig FRAGMENT DOTCONFIG: fail when a line of the fragment did not survive into .config
# (Kconfig silently drops options whose dependencies are off).
set -eu
fragment=$1 config=$2 missing=0
grep -E '^(CONFIG_[A-Z0-9_]+=.*|# CONFIG_[A-Z0-9_]+ is not set)$' "$fragment" | while IFS= read -r line; do
    case $line in
        "# CONFIG_"*) name=${line#\# }; name=${name%% *}
                      if grep -q "^$name=[ym]" "$config"; then echo "check-kconfig: $name should be off" >&2; exit 1; fi ;;
        *) grep -qxF "$line" "$config" || { echo "check-kconfig: fragment wants '$line', .config has '$(grep "^${line%%=*}=" "$config" || echo unset)'" >&2; exit 1; } ;;
    esac
done
echo "check-kconfig: all $(grep -cE '^(CONFIG_|# CONFIG_)' "$fragment") fragment lines are in .config"
