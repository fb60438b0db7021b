# cross/profile.sh — sourced by cross/ and packaging/ scripts: the cargo profile they build and
# where cargo puts its output. Sets: profile (PROFILE, default release) and out_dir (the folder
# under target/[TARGET/]: cargo names the `dev` profile's folder `debug`).
# shellcheck shell=bash disable=SC2034
profile=${PROFILE:-release}
if [[ $profile == dev ]]; then
  out_dir=debug
else
  out_dir=$profile
fi
