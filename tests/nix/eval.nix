# Evaluates services.darlings with the stubs and MODULES; the parts the
# tests look at, each on its own so that one failing does not hide others.
# PACKAGE is the store path of services.darlings.package; null leaves the
# option to the modules (the flake's, or pkgs.darlings of the stubs).
{ shared, modules, package ? "/nix/store/00000000000000000000000000000000-darlings-0.1.0" }:

let
  lib = import (shared + "/nixpkgs-lib");
  eval = lib.evalModules {
    modules = [
      ./stubs.nix
      ../../nix/module.nix
    ] ++ lib.optional (package != null)
      { services.darlings.package = { type = "derivation"; name = "darlings"; outPath = package; }; }
    ++ modules;
  };
  c = eval.config;
  mine = lib.filterAttrs (n: _: lib.hasPrefix "darlings" n);
in
{
  inherit c lib;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  inherit (c) warnings;
  package = "${c.services.darlings.package}";
  etc = lib.mapAttrs (_: v: v.text) (mine c.environment.etc);
  services = mine c.systemd.services;
  timers = mine c.systemd.timers;
  initrd = {
    services = mine c.boot.initrd.systemd.services;
    storePaths = c.boot.initrd.systemd.storePaths;
    contents = lib.filterAttrs (n: _: lib.hasPrefix "/etc/darlings" n) c.boot.initrd.systemd.contents;
    inherit (c.boot.initrd) extraUtilsCommands postResumeCommands postDeviceCommands;
    extraFiles = lib.mapAttrs (_: v: "${v.source}") c.boot.initrd.extraFiles;
  };
}
