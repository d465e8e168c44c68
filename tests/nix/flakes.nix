# What a machine's flake passes its configuration: the outputs of this
# repository's flake.nix and of the impermanence and preservation flakes
# (from SHARED), each called with the inputs it names. Of nixpkgs only
# `lib` is real; a package is a store path made from its name, never built.
{ shared }:

let
  lib = import (shared + "/nixpkgs-lib");

  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/11111111111111111111111111111111-${name}"; };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: {
      callPackage = fn: args: fn ({
        inherit lib;
        installShellFiles = fake "install-shell-files";
        rustPlatform.buildRustPackage = a: fake "${a.pname}-${a.version}" // {
          inherit (a) meta cargoLock;
          inherit system;
          postInstall = a.postInstall or "";
          nativeBuildInputs = a.nativeBuildInputs or [ ];
        };
      } // args);
    });
  };
  # A flake's outputs, with `self` and the inputs it names.
  flake = dir: inputs:
    let outputs = (import (dir + "/flake.nix")).outputs (inputs // { self = outputs; });
    in outputs;
in
{
  # The stand-in itself, for tests that apply the overlay.
  inherit nixpkgs;
  darlings = flake ../.. { inherit nixpkgs; };
  impermanence = flake (shared + "/impermanence") { inherit nixpkgs; home-manager = { }; };
  preservation = flake (shared + "/preservation") { };
}
