# cross/profile.sh — sourced by cross/ and packaging/ scripts: the cargo profile they build and
# where cargo puts its output. Sets: profile (PROFILE, default release) and out_dir (the folder
# under target/[TARGET/]: cargo names the `dev` profile's folder `debug`).
# shellcheck shell=bash disable=SC2034,SC2154
profile=${PROFILE:-release}
if [[ $profile == dev ]]; then
  out_dir=debug
else
  out_dir=$profile
fi

# The native test build, exactly as `make test` builds it (the Makefile's TEST_BUILD): its
# target/debug/vigil is the native reference of cross/test.sh and CI's amd64 package. A plain
# `cargo build` resolves dev-dependency features differently and rebuilds the agent; after
# `make test` this is a no-op. Needs $repo.
native_test_build() {
  (cd "${repo:?}" && cargo test --locked -q --workspace --features vigil-tests/ort --no-run)
}
