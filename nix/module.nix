# services.darlings: audits that know every declared claim, a record at
# shutdown, a Prometheus textfile, and the guarded initrd rollback.
#
# Generated files are written with lib and builtins only, so this module
# evaluates without a package set; the package is reached only through
# cfg.package.
{ config, lib, options, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf mkMerge types optional optionals optionalString
    concatMapStringsSep concatStringsSep;

  cfg = config.services.darlings;
  inherit (cfg) rollback;

  # The same filtering as `darlings nix expr …`: removed options never throw.
  clean = import ../src/claims/nix/clean.nix;

  hasImpermanence = lib.hasAttrByPath [ "environment" "persistence" ] options;
  hasPreservation = lib.hasAttrByPath [ "preservation" "preserveAt" ] options;
  impermanence = hasImpermanence && config.environment.persistence != { };
  preservation = hasPreservation && (config.preservation.enable or true)
    && config.preservation.preserveAt != { };

  claimFiles =
    optional impermanence {
      module = "impermanence";
      value = config.environment.persistence;
    }
    ++ optional preservation {
      module = "preservation";
      value = config.preservation.preserveAt;
    };
  claimPath = c: "/etc/darlings/${c.module}.json";
  claimJson = c: builtins.unsafeDiscardStringContext (builtins.toJSON (clean c.value));

  # A JSON string is a TOML basic string.
  str = builtins.toJSON;
  rule = r:
    if builtins.isString r then str r
    else "{ path = ${str r.path}${optionalString (r.reason != null) ", reason = ${str r.reason}"} }";
  rules = name: list:
    "${name} = [\n" + concatMapStringsSep "" (r: "  ${rule r},\n") list + "]\n";
  precious = p: ''

    [[precious]]
    path = ${str p.path}
    severity = ${str p.severity}
    reason = ${str p.reason}
    file = ${lib.boolToString p.file}
  '';
  manifest =
    "# Written by the NixOS module services.darlings.\nversion = 1\n"
    + rules "keep" cfg.settings.keep
    + rules "ignore" cfg.settings.ignore
    + concatMapStringsSep "" (c: "${c.module} = ${str (claimPath c)}\n") claimFiles
    + concatMapStringsSep "" precious cfg.settings.precious;

  darlings = "${cfg.package}/bin/darlings";

  # One argument of a systemd command line: quoted, with `$` and `%` escaped.
  execArg = a:
    let plain = builtins.match "[A-Za-z0-9_@+=:,./-]+" a != null;
    in if plain then lib.replaceStrings [ "%" ] [ "%%" ] a
    else "\"" + lib.replaceStrings [ "\\" "\"" "$" "%" "\n" ] [ "\\\\" "\\\"" "$$" "%%" "\\n" ] a + "\"";
  execLine = concatMapStringsSep " " execArg;

  # Exit 1 and 3 report findings, not a failure of the unit.
  findingsAreSuccess = "1 3";
  # zfs, btrfs and the like come from the system profile.
  systemPath = [ "/run/current-system/sw" ];

  auditArgs = [ "audit" "--progress" "never" ] ++ cfg.audit.extraArgs;
  textfile = toString cfg.audit.textfileDir;
  # The rollback's state (the last rollback, or why the initrd refused it),
  # read on the running system with the rollback's own target.
  statusArgs = [ "status" "--format" "prometheus" ] ++ rootArgs ++ archiveArgs;
  # What the textfile carries in place of the status metrics when
  # `darlings status` fails (its error goes to the unit's log): a gauge to
  # alert on.
  statusDown = [
    "# HELP darlings_status_up 0: darlings status failed, the rollback status metrics are missing (see the darlings-audit unit log)."
    "# TYPE darlings_status_up gauge"
    "darlings_status_up 0"
  ];
  # Written to a temporary name in the same directory, then renamed: the
  # collector never reads half a file. An incomplete audit (2) still reports.
  # With the rollback, the status metrics go into the same file before the
  # rename; a failing status never keeps the audit's metrics out, and only
  # a status that succeeds has its output appended (never half of it).
  appendStatus = optionalString rollback.enable (concatStringsSep "; " [
    "if ${lib.escapeShellArgs ([ darlings ] ++ statusArgs)} > \"$t.status\""
    "then cat \"$t.status\" >> \"$t\""
    "else printf '%s\\n' ${lib.escapeShellArgs statusDown} >> \"$t\""
    "fi"
    "rm -f \"$t.status\""
  ] + "; ");
  auditScript = concatStringsSep "; " [
    "t=${lib.escapeShellArg "${textfile}/.darlings.prom"}.$$"
    "${lib.escapeShellArgs ([ darlings ] ++ auditArgs ++ [ "--format" "prometheus" ])} > \"$t\""
    "rc=$?"
    ("if [ \"$rc\" -le 3 ] && [ -s \"$t\" ]; then ${appendStatus}mv -f \"$t\" "
      + "${lib.escapeShellArg "${textfile}/darlings.prom"}; else rm -f \"$t\"; fi")
    "exit \"$rc\""
  ];

  zfs = rollback.zfs.dataset != null;
  btrfs = rollback.btrfs.device != null;
  pool = builtins.head (lib.splitString "/" rollback.zfs.dataset);
  # The target, in the parts each command takes: the root (the rollback
  # and its status), its blank state (the rollback), its archives (both).
  rootArgs = optionals zfs [ "--dataset" rollback.zfs.dataset ]
    ++ optionals btrfs [ "--device" rollback.btrfs.device "--subvolume" rollback.btrfs.subvolume ];
  blankArgs = optionals zfs [ "--snapshot" rollback.zfs.snapshot ]
    ++ optionals btrfs [ "--blank" rollback.btrfs.blank ];
  archiveArgs =
    optionals (zfs && rollback.zfs.archiveDataset != null) [ "--archive-dataset" rollback.zfs.archiveDataset ];
  # `record` keeps its record beside the root: the root and its archives.
  recordTarget = rootArgs ++ archiveArgs;
  rollbackArgs =
    [ "rollback" "--initrd" "--no-default-manifest" "--manifest" "/etc/darlings/manifest.toml" ]
    ++ rootArgs ++ blankArgs ++ archiveArgs
    ++ optionals (rollback.retain != null) [ "--retain" (toString rollback.retain) ]
    ++ optionals (rollback.retainDays != null) [ "--retain-days" (toString rollback.retainDays) ]
    ++ rollback.extraArgs;

  # The initrd reads the same manifest and claim files at the same paths.
  initrdFiles = { "/etc/darlings/manifest.toml" = manifest; }
    // builtins.listToAttrs (map (c: { name = claimPath c; value = claimJson c; }) claimFiles);

  ruleType = types.either types.str (types.submodule {
    options = {
      path = mkOption { type = types.str; description = "An absolute path or glob."; };
      reason = mkOption { type = types.nullOr types.str; default = null; description = "Why."; };
    };
  });
  nullOrStr = description: mkOption { type = types.nullOr types.str; default = null; inherit description; };
in
{
  options.services.darlings = {
    enable = mkEnableOption "darlings, the audit of what the next boot erases";

    package = mkOption {
      type = types.package;
      default = pkgs.darlings;
      defaultText = lib.literalExpression "pkgs.darlings";
      description = "The darlings package (the flake's nixosModules.default sets its own).";
    };

    settings = {
      keep = mkOption {
        type = types.listOf ruleType;
        default = [ ];
        example = [ "/etc/nixos" { path = "/var/lib/bluetooth"; reason = "pairings"; } ];
        description = "Keep rules of the default manifest (claims, checked like any other).";
      };
      ignore = mkOption {
        type = types.listOf ruleType;
        default = [ ];
        example = [ "/home/*/.cache" ];
        description = "Ignore rules of the default manifest: fine to lose.";
      };
      precious = mkOption {
        default = [ ];
        description = "Additions to the catalogue of precious state.";
        type = types.listOf (types.submodule {
          options = {
            path = mkOption { type = types.str; description = "An absolute path or glob."; };
            severity = mkOption { type = types.enum [ "critical" "important" "info" ]; description = "How bad its loss is."; };
            reason = mkOption { type = types.str; default = ""; description = "Why it matters."; };
            file = mkOption { type = types.bool; default = false; description = "A single file (a directory otherwise)."; };
          };
        });
      };
    };

    audit = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "A systemd timer running `darlings audit`.";
      };
      interval = mkOption {
        type = types.str;
        default = "hourly";
        description = "When the audit runs (systemd OnCalendar).";
      };
      textfileDir = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/var/lib/prometheus-node-exporter-text-files";
        description = "node_exporter's textfile directory: the audit writes darlings.prom there atomically.";
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "--fail-on" "critical" ];
        description = "More arguments of `darlings audit`.";
      };
    };

    record = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Run `darlings record` at shutdown: the initrd rollback decides by it.
          The record is kept beside the root, so it needs the rollback's target
          (rollback.zfs or rollback.btrfs); at boot the unit removes the record
          of the last shutdown (a record is used at most once).
        '';
      };
      timeout = mkOption {
        type = types.str;
        default = "10min";
        example = "30min";
        description = ''
          How long `darlings record` may take at shutdown (systemd's TimeoutStopSec):
          a cold audit of a slow disk takes minutes, systemd's default of 90 s would
          kill it, and a killed record leaves none, so the next boot does not erase.
        '';
      };
    };

    rollback = {
      enable = mkEnableOption "the guarded rollback of the root in the initrd";
      zfs = {
        dataset = nullOrStr "The ZFS root dataset, e.g. rpool/local/root.";
        snapshot = mkOption { type = types.str; default = "blank"; description = "Its blank snapshot."; };
        archiveDataset = nullOrStr "Where the erased roots are kept, e.g. rpool/safe/darlings/root.";
      };
      btrfs = {
        device = nullOrStr "The btrfs filesystem's device, e.g. /dev/disk/by-label/nixos.";
        subvolume = mkOption { type = types.str; default = "root"; description = "The root subvolume."; };
        blank = mkOption { type = types.str; default = "root-blank"; description = "The read-only blank subvolume."; };
      };
      retain = mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        description = "Keep the newest N archives.";
      };
      retainDays = mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        description = "Keep archives younger than D days.";
      };
      after = mkOption {
        type = types.listOf types.str;
        default = if zfs then [ "zfs-import-${pool}.service" ] else [ "initrd-root-device.target" ];
        defaultText = lib.literalExpression
          ''[ "zfs-import-<pool>.service" ] for ZFS, [ "initrd-root-device.target" ] for btrfs'';
        description = "systemd initrd: the units the rollback waits for (the pool import, the root device).";
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "--destroy-newer" ];
        description = "More arguments of `darlings rollback --initrd`.";
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = !(zfs && btrfs);
          message = "services.darlings.rollback: set either zfs.dataset or btrfs.device, not both.";
        }
        {
          assertion = rollback.enable -> (zfs || btrfs);
          message = "services.darlings.rollback.enable needs a target: zfs.dataset or btrfs.device.";
        }
        {
          assertion = zfs -> rollback.zfs.archiveDataset != null;
          message = "services.darlings.rollback.zfs.archiveDataset must be set: it keeps the way back.";
        }
      ];
      warnings = optional (rollback.enable && !cfg.record.enable)
        "services.darlings: the initrd rollback refuses without an audit recorded at shutdown (record.enable is false).";

      environment.etc = { "darlings/manifest.toml".text = manifest; }
        // builtins.listToAttrs (map (c: { name = "darlings/${c.module}.json"; value.text = claimJson c; }) claimFiles);
    }

    (mkIf cfg.audit.enable {
      systemd.services.darlings-audit = {
        description = "Audit what the next boot erases";
        path = systemPath;
        serviceConfig = {
          Type = "oneshot";
          SuccessExitStatus = findingsAreSuccess;
          ExecStart =
            if cfg.audit.textfileDir == null then execLine ([ darlings ] ++ auditArgs)
            else execLine [ "/bin/sh" "-c" auditScript ];
        };
      };
      systemd.timers.darlings-audit = {
        description = "Audit what the next boot erases, ${cfg.audit.interval}";
        wantedBy = [ "timers.target" ];
        # Also soon after boot: the textfile then shows what the initrd's
        # rollback did (a refusal exits 0 there) without waiting an interval.
        timerConfig = {
          OnCalendar = cfg.audit.interval;
          OnBootSec = "2min";
          Persistent = true;
        };
      };
    })

    # Started early at boot doing nothing; stopped late at shutdown: after
    # every ordinary service (they start after sysinit.target), before the
    # mounts of local-fs.target and the claims' bind mounts go away.
    (mkIf (cfg.record.enable && (zfs || btrfs)) {
      systemd.services.darlings-record = {
        description = "Record what the next boot's rollback will erase";
        wantedBy = [ "sysinit.target" ];
        after = [ "local-fs.target" ];
        before = [ "sysinit.target" "shutdown.target" ];
        conflicts = [ "shutdown.target" ];
        path = systemPath;
        unitConfig.DefaultDependencies = false;
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          # Up: the record of the last shutdown is used (or was skipped, as by
          # a rescue boot); no later boot may act on it.
          ExecStart = execLine ([ darlings "record" "--invalidate" ] ++ recordTarget);
          ExecStop = execLine ([ darlings "record" "--progress" "never" ] ++ recordTarget);
          TimeoutStopSec = cfg.record.timeout;
          # The record itself (up to a megabyte of JSON) is kept beside the
          # root, not in the journal; what goes wrong goes to stderr.
          StandardOutput = "null";
          SuccessExitStatus = findingsAreSuccess;
        };
      };
    })

    # It never blocks the boot: `--initrd` leaves the root as it is on any
    # refusal and exits 0.
    (mkIf (rollback.enable && config.boot.initrd.systemd.enable) {
      boot.initrd.systemd.storePaths = [ darlings ];
      boot.initrd.systemd.contents = lib.mapAttrs (_: text: { inherit text; }) initrdFiles;
      boot.initrd.systemd.services.darlings-rollback = {
        description = "Roll the root back to its blank snapshot, keeping the way back";
        wantedBy = [ "initrd.target" ];
        wants = rollback.after;
        after = rollback.after;
        before = [ "sysroot.mount" ];
        unitConfig.DefaultDependencies = false;
        serviceConfig = {
          Type = "oneshot";
          ExecStart = execLine ([ darlings ] ++ rollbackArgs);
        };
      };
    })

    (mkIf (rollback.enable && !config.boot.initrd.systemd.enable) {
      boot.initrd.extraUtilsCommands = "copy_bin_and_libs ${darlings}\n";
      boot.initrd.extraFiles = lib.mapAttrs'
        (name: text: {
          inherit name;
          value.source = builtins.toFile "darlings-${baseNameOf name}" text;
        })
        initrdFiles;
      # After the device nodes and the ZFS pool import (which NixOS does in
      # postResumeCommands), before the root is mounted.
      boot.initrd.postResumeCommands = lib.mkAfter ''
        ${lib.escapeShellArgs ([ "darlings" ] ++ rollbackArgs)}
      '';
    })
  ]);
}
