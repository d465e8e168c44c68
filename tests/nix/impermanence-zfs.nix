# impermanence with system and user claims, files and directories, a
# disabled storage root; ZFS rollback from the systemd initrd.
{ shared, ... }:
{
  imports = [ (shared + "/impermanence/nixos.nix") ];
  boot.initrd.systemd.enable = true;
  fileSystems."/persist".neededForBoot = true;
  users.users.alice = { };
  environment.persistence."/persist" = {
    hideMounts = true;
    directories = [
      "/var/lib/bluetooth"
      { directory = "/var/lib/colord"; user = "colord"; group = "colord"; mode = "u=rwx,g=rx,o="; }
    ];
    files = [ "/etc/machine-id" ];
    users.alice = {
      directories = [ ".ssh" ];
      files = [ ".zsh_history" ];
    };
  };
  environment.persistence."/scratch" = {
    enable = false;
    directories = [ "/var/cache" ];
  };
  services.darlings = {
    enable = true;
    settings = {
      keep = [ "/etc/nixos" { path = "/srv/app"; reason = "the \"app\" data"; } ];
      ignore = [ "/home/*/.cache" ];
      precious = [ { path = "/srv/app/uploads"; severity = "critical"; reason = "uploads"; } ];
    };
    audit = {
      interval = "*:0/30";
      textfileDir = "/var/lib/prometheus-node-exporter-text-files";
      extraArgs = [ "--fail-on" "critical" ];
    };
    rollback = {
      enable = true;
      zfs = { dataset = "rpool/local/root"; archiveDataset = "rpool/safe/darlings/root"; };
      retainDays = 30;
    };
  };
}
