# btrfs rollback from the scripted initrd; impermanence claims only for
# users; the audit without a textfile.
{ shared, ... }:
{
  imports = [ (shared + "/impermanence/nixos.nix") ];
  fileSystems."/persist".neededForBoot = true;
  users.users.bob.home = "/srv/home/bob";
  environment.persistence."/persist".users.bob = {
    directories = [ "projects" ];
    files = [ ".config/app.conf" ];
  };
  services.darlings = {
    enable = true;
    rollback = {
      enable = true;
      btrfs.device = "/dev/disk/by-label/nixos";
      retain = 5;
      retainDays = 7;
    };
  };
}
