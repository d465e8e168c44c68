# preservation with system and user claims, files and directories, its
# generated parent directories; no rollback, no record.
{ shared, ... }:
{
  imports = [ (shared + "/preservation/module.nix") ];
  boot.initrd.systemd.enable = true;
  users.users.alice = { };
  preservation.enable = true;
  preservation.preserveAt."/persistent" = {
    directories = [ "/var/lib/nixos" { directory = "/var/lib/private"; mode = "0700"; } ];
    files = [ { file = "/etc/machine-id"; inInitrd = true; } ];
    users.alice = {
      directories = [ ".ssh" ".local/share/keyrings" ];
      files = [ ".bash_history" ];
    };
  };
  services.darlings = {
    enable = true;
    record.enable = false;
    audit.enable = false;
  };
}
