# darlings: keep what evaluates, drop what throws.
#
# For `nix eval --json ... --apply` of a claims module's value (impermanence's
# `environment.persistence`, preservation's `preservation.preserveAt`):
# current impermanence revisions keep removed options (allowOther,
# removePrefixDirectory, a user's home, ...) as attributes that throw when
# forced, so a plain `nix eval --json` of the configuration fails. This
# function, builtins only, walks the value and leaves out every attribute
# or list element whose evaluation fails, and every function (JSON has
# none). Works on every revision of either module.
let
  try = v: builtins.tryEval (builtins.deepSeq v v);
  clean = v:
    if builtins.isFunction v then
      null
    else if builtins.isAttrs v then
      builtins.listToAttrs (builtins.concatMap
        (name:
          let r = try (clean v.${name}); in
          if r.success then [ { inherit name; inherit (r) value; } ] else [ ])
        (builtins.attrNames v))
    else if builtins.isList v then
      builtins.concatMap (x: let r = try (clean x); in if r.success then [ r.value ] else [ ]) v
    else
      v;
in
clean
