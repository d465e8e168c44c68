{
  description = "darlings: what the next boot erases, claims checked, and a guarded rollback";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      cargo = builtins.fromTOML (builtins.readFile ./Cargo.toml);
      darlings = { lib, rustPlatform, installShellFiles }:
        rustPlatform.buildRustPackage {
          pname = "darlings";
          inherit (cargo.package) version;
          src = lib.cleanSource ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # The end-to-end tests mount, run a ZFS guest and need root.
          doCheck = false;
          # The man pages and completions are generated and committed
          # (tests/generated.rs keeps them current): installed as they are.
          nativeBuildInputs = [ installShellFiles ];
          postInstall = ''
            installManPage doc/*.1
            installShellCompletion --bash completions/darlings.bash \
              --fish completions/darlings.fish --zsh completions/_darlings
          '';
          meta = {
            description = cargo.package.description or "audit what an ephemeral root erases";
            mainProgram = "darlings";
            platforms = lib.platforms.linux;
          };
        };
    in
    {
      packages = forAll (pkgs: { default = pkgs.callPackage darlings { }; });

      overlays.default = final: _prev: { darlings = final.callPackage darlings { }; };

      nixosModules.default = { lib, pkgs, ... }: {
        imports = [ ./nix/module.nix ];
        services.darlings.package =
          lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };
    };
}
