# Evaluates one nix block of the README (BLOCK: a file holding it as
# `inputs: module`) with the stubs, through eval.nix. The block sees the
# flake outputs a machine's flake gives its configuration (flakes.nix):
# `darlings`, `impermanence`, `preservation`. EXTRA: more modules, a
# function of the same inputs.
{ shared, block, extra ? (_: [ ]) }:

let
  inputs = import ./flakes.nix { inherit shared; };
in
import ./eval.nix {
  inherit shared;
  package = null;
  modules = [
    # The rest of the machine the examples are written for.
    { users.users.alice = { }; }
    (import block inputs)
  ] ++ extra inputs;
}
