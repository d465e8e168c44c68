# The few NixOS options darlings, impermanence and preservation touch,
# declared as permissively as they allow: enough for lib.evalModules
# outside NixOS. What NixOS itself would make of the values is not checked.
{ lib, ... }:

let
  inherit (lib) mkOption types;
  any = mkOption { type = types.anything; default = { }; };
  attrs = mkOption { type = types.attrsOf types.anything; default = { }; };
  list = mkOption { type = types.listOf types.anything; default = [ ]; };
  lines = mkOption { type = types.lines; default = ""; };
  # A package that is never built: only its store path is read.
  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/22222222222222222222222222222222-${name}"; };
in
{
  options = {
    assertions = list;
    warnings = mkOption { type = types.listOf types.str; default = [ ]; };
    environment.etc = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        freeformType = types.attrsOf types.anything;
        options.text = mkOption { type = types.nullOr types.lines; default = null; };
      });
    };
    fileSystems = mkOption {
      default = { };
      type = types.attrsOf (types.submodule ({ name, ... }: {
        freeformType = types.attrsOf types.anything;
        options.neededForBoot = mkOption { type = types.bool; default = false; };
        options.mountPoint = mkOption { type = types.str; default = name; };
      }));
    };
    users.users = mkOption {
      default = { };
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options.home = mkOption { type = types.str; default = "/home/${name}"; };
        options.group = mkOption { type = types.str; default = "users"; };
        options.homeMode = mkOption { type = types.str; default = "700"; };
        options.uid = mkOption { type = types.nullOr types.int; default = null; };
      }));
    };
    users.groups = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.gid = mkOption { type = types.nullOr types.int; default = null; };
      });
    };
    system.activationScripts = attrs;
    systemd = {
      services = attrs;
      timers = attrs;
      targets = attrs;
      mounts = list;
      tmpfiles.settings = attrs;
    };
    boot.initrd = {
      systemd = {
        enable = mkOption { type = types.bool; default = false; };
        services = attrs;
        targets = attrs;
        mounts = list;
        storePaths = list;
        contents = attrs;
        suppressedUnits = list;
        tmpfiles.settings = attrs;
      };
      extraUtilsCommands = lines;
      postDeviceCommands = lines;
      postResumeCommands = lines;
      postMountCommands = lines;
      extraFiles = mkOption {
        default = { };
        type = types.attrsOf (types.submodule {
          options.source = mkOption { type = types.package; };
        });
      };
    };
  };

  # NixOS always has root.
  config.users.users.root = { home = "/root"; group = "root"; };

  config._module.args = {
    pkgs = {
      # Only lib.nix of impermanence is called through it here.
      callPackage = fn: args: import fn ({ inherit lib; } // args);
      # What the flake's module and the README's blocks reach for.
      stdenv.hostPlatform.system = "x86_64-linux";
      darlings = fake "darlings-0.1.0";
      coreutils = fake "coreutils-9.5";
    };
    utils = {
      escapeSystemdPath = s: lib.replaceStrings [ "/" ] [ "-" ] (lib.removePrefix "/" s);
      pathsNeededForBoot = [ "/" "/nix" "/nix/store" "/var" "/var/log" "/var/lib" "/var/lib/nixos" "/etc" "/usr" ];
    };
  };
}
