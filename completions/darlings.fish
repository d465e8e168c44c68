# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_darlings_global_optspecs
    string join \n root= manifest= no-default-manifest keep= ignore= impermanence= preservation= assume-claims source= snapshot= dataset= baseline= zfs-diff= strip-prefix= format= flat verdict= min-size= sort= color= accepted= fail-on= suggest= suggest-all suggest-storage= threads= progress= h/help V/version
end

function __fish_darlings_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_darlings_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_darlings_using_subcommand
    set -l cmd (__fish_darlings_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c darlings -n "__fish_darlings_needs_command" -l root -d 'Audit DIR as if it were `/`: rules, symlink targets and reported paths are read relative to it [default: /]' -r -F
complete -c darlings -n "__fish_darlings_needs_command" -l manifest -d 'Read rules from this manifest (repeatable); ROOT/etc/darlings/manifest.toml is read too when present' -r -F
complete -c darlings -n "__fish_darlings_needs_command" -l keep -d 'Claim PATTERN as persisted (repeatable): an absolute path (the path and everything under it) or a glob (`*` does not cross `/`)' -r
complete -c darlings -n "__fish_darlings_needs_command" -l ignore -d 'Declare PATTERN fine to lose (repeatable)' -r
complete -c darlings -n "__fish_darlings_needs_command" -l impermanence -d 'Read the claims of NixOS\'s impermanence module: the JSON of `config.environment.persistence` (`-` for stdin; see `darlings` README for the `nix eval` command)' -r -F
complete -c darlings -n "__fish_darlings_needs_command" -l preservation -d 'Read the claims of NixOS\'s preservation module: the JSON of `config.preservation.preserveAt` (`-` for stdin)' -r -F
complete -c darlings -n "__fish_darlings_needs_command" -l source -d 'Where the list of state comes from' -r -f -a "auto\t'From the root\'s filesystem: ZFS and btrfs compare with their blank snapshot, anything else is walked'
walk\t'A parallel one-filesystem walk of the root'
zfs\t'`zfs diff -FHt DATASET@SNAPSHOT` of the dataset mounted at the root'
btrfs\t'Compare a btrfs root with its blank snapshot, found next to the root subvolume (--baseline compares with any blank tree instead)'"
complete -c darlings -n "__fish_darlings_needs_command" -l snapshot -d 'The blank snapshot to compare with (zfs source, and a saved diff\'s hard links) [default: blank]' -r
complete -c darlings -n "__fish_darlings_needs_command" -l dataset -d 'The ZFS dataset mounted at the root (zfs source) [default: from /proc/self/mountinfo]' -r
complete -c darlings -n "__fish_darlings_needs_command" -l baseline -d 'Compare with this blank tree (a btrfs blank snapshot, /.zfs/snapshot/blank, a mounted pristine image): the source, instead of what --source chooses' -r -F
complete -c darlings -n "__fish_darlings_needs_command" -l zfs-diff -d 'Read a saved `zfs diff -FHt` output (`-` for stdin) instead of walking; the live tree is consulted only where --root says it is mounted' -r -F
complete -c darlings -n "__fish_darlings_needs_command" -l strip-prefix -d 'The paths in the diff are below DIR (where the dataset was mounted when diffed): audit them as if DIR were `/`' -r -F
complete -c darlings -n "__fish_darlings_needs_command" -l format -d 'Output format [default: table on a terminal, json otherwise]' -r -f -a "table\t''
json\t''
ndjson\t''
prometheus\t''"
complete -c darlings -n "__fish_darlings_needs_command" -l verdict -d 'Show only findings with these verdicts (comma-separated); totals still count everything (not with --format prometheus: it has only totals)' -r -f -a "broken\t''
unclaimed\t''
new-identity\t''
shadowed\t'On the root, hidden under a mount point: erased, and invisible'
kept\t''
ignored\t''
recreated\t''
structure\t''
restored\t''"
complete -c darlings -n "__fish_darlings_needs_command" -l min-size -d 'Show only findings of at least SIZE bytes (suffixes K, M, G, T, P: powers of 1024; not with --format prometheus)' -r
complete -c darlings -n "__fish_darlings_needs_command" -l sort -d 'Order of findings [default: path] (not with --format prometheus)' -r -f -a "path\t'By path, bytewise (the table: in sections by verdict, losses first, critical state first)'
size\t'Largest first, whatever the verdict (the table too: one list, no sections); equal sizes by path, then rows without a size (kept, ignored, structure)'"
complete -c darlings -n "__fish_darlings_needs_command" -l color -d 'Colour in the table [default: auto, off when NO_COLOR is set or not a terminal] (only with --format table)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c darlings -n "__fish_darlings_needs_command" -l accepted -d 'A previous JSON report, or a list of paths (one per line, `#` comments): matching findings are accepted and never raise the exit code' -r -F
complete -c darlings -n "__fish_darlings_needs_command" -l fail-on -d 'Verdicts or severities that make the exit code 1 (comma-separated) [default: every loss verdict]' -r -f -a "unclaimed\t''
broken\t''
new-identity\t''
shadowed\t''
critical\t'Any loss of catalogued state that is critical'
important\t'Any loss of catalogued state that is important or critical'
none\t'Never exit 1 for a loss (errors and broken claims still count)'"
complete -c darlings -n "__fish_darlings_needs_command" -l suggest -d 'Print a NixOS block that claims the important and critical unclaimed state (instead of the report; exits 0 unless the audit is incomplete)' -r -f -a "nix\t'environment.persistence (impermanence)'
preservation\t'preservation.preserveAt'"
complete -c darlings -n "__fish_darlings_needs_command" -l suggest-storage -d 'With --suggest: the storage root to persist in [default: /persist]' -r
complete -c darlings -n "__fish_darlings_needs_command" -l threads -d 'CPU threads for the audit [default: number of cores]; the walk keeps at least 16 directory reads and stats in flight whatever N is' -r
complete -c darlings -n "__fish_darlings_needs_command" -l progress -d 'Show progress on stderr [default: auto, only when stderr is a terminal]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c darlings -n "__fish_darlings_needs_command" -l no-default-manifest -d 'Do not read ROOT/etc/darlings/manifest.toml'
complete -c darlings -n "__fish_darlings_needs_command" -l assume-claims -d 'Trust claims without checking them (for trees that cannot show their mounts, like an unbooted image); such claims are marked unverified'
complete -c darlings -n "__fish_darlings_needs_command" -l flat -d 'List every path of every loss verdict instead of grouping whole subtrees'
complete -c darlings -n "__fish_darlings_needs_command" -l suggest-all -d 'With --suggest: every unclaimed subtree, not only catalogued state'
complete -c darlings -n "__fish_darlings_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c darlings -n "__fish_darlings_needs_command" -s V -l version -d 'Print version'
complete -c darlings -n "__fish_darlings_needs_command" -a "audit" -d 'Walk the root and report the state the next boot will erase (the default)'
complete -c darlings -n "__fish_darlings_needs_command" -a "explain" -d 'Show every rule that matches PATH, which one decides, and why'
complete -c darlings -n "__fish_darlings_needs_command" -a "stray" -d 'List what lies in the persistent storage roots of --impermanence / --preservation but is no longer declared by any claim (read-only)'
complete -c darlings -n "__fish_darlings_needs_command" -a "rollback" -d 'Erase the ephemeral root now: roll it back to its blank snapshot, after showing the plan, behind guards, keeping a way back'
complete -c darlings -n "__fish_darlings_needs_command" -a "mark" -d 'Mark a root dataset or subvolume as ephemeral (rollback refuses unmarked targets)'
complete -c darlings -n "__fish_darlings_needs_command" -a "archives" -d 'List the archives rollback kept (the way back), newest first'
complete -c darlings -n "__fish_darlings_needs_command" -a "restore" -d 'Copy a path back from an archive into the root (never overwriting without --force)'
complete -c darlings -n "__fish_darlings_needs_command" -a "record" -d 'Record the audit of the running root for the next boot\'s rollback (run it at shutdown: the initrd cannot check claims)'
complete -c darlings -n "__fish_darlings_needs_command" -a "status" -d 'Show a root\'s mark, the last rollback (or why it was refused), the recorded audit and the archives'
complete -c darlings -n "__fish_darlings_needs_command" -a "nix" -d 'Nix helpers: `darlings nix expr impermanence|preservation` prints the `--apply` expression that makes `nix eval --json` of the module\'s value work on every revision'
complete -c darlings -n "__fish_darlings_needs_command" -a "completions" -d 'Print shell completions for SHELL to stdout'
complete -c darlings -n "__fish_darlings_needs_command" -a "man" -d 'Print a man page (roff) to stdout: the command\'s, or a subcommand\'s (`man nix expr`)'
complete -c darlings -n "__fish_darlings_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l root -d 'Audit DIR as if it were `/`: rules, symlink targets and reported paths are read relative to it [default: /]' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l manifest -d 'Read rules from this manifest (repeatable); ROOT/etc/darlings/manifest.toml is read too when present' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l keep -d 'Claim PATTERN as persisted (repeatable): an absolute path (the path and everything under it) or a glob (`*` does not cross `/`)' -r
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l ignore -d 'Declare PATTERN fine to lose (repeatable)' -r
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l impermanence -d 'Read the claims of NixOS\'s impermanence module: the JSON of `config.environment.persistence` (`-` for stdin; see `darlings` README for the `nix eval` command)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l preservation -d 'Read the claims of NixOS\'s preservation module: the JSON of `config.preservation.preserveAt` (`-` for stdin)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l source -d 'Where the list of state comes from' -r -f -a "auto\t'From the root\'s filesystem: ZFS and btrfs compare with their blank snapshot, anything else is walked'
walk\t'A parallel one-filesystem walk of the root'
zfs\t'`zfs diff -FHt DATASET@SNAPSHOT` of the dataset mounted at the root'
btrfs\t'Compare a btrfs root with its blank snapshot, found next to the root subvolume (--baseline compares with any blank tree instead)'"
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l snapshot -d 'The blank snapshot to compare with (zfs source, and a saved diff\'s hard links) [default: blank]' -r
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l dataset -d 'The ZFS dataset mounted at the root (zfs source) [default: from /proc/self/mountinfo]' -r
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l baseline -d 'Compare with this blank tree (a btrfs blank snapshot, /.zfs/snapshot/blank, a mounted pristine image): the source, instead of what --source chooses' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l zfs-diff -d 'Read a saved `zfs diff -FHt` output (`-` for stdin) instead of walking; the live tree is consulted only where --root says it is mounted' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l strip-prefix -d 'The paths in the diff are below DIR (where the dataset was mounted when diffed): audit them as if DIR were `/`' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l format -d 'Output format [default: table on a terminal, json otherwise]' -r -f -a "table\t''
json\t''
ndjson\t''
prometheus\t''"
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l verdict -d 'Show only findings with these verdicts (comma-separated); totals still count everything (not with --format prometheus: it has only totals)' -r -f -a "broken\t''
unclaimed\t''
new-identity\t''
shadowed\t'On the root, hidden under a mount point: erased, and invisible'
kept\t''
ignored\t''
recreated\t''
structure\t''
restored\t''"
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l min-size -d 'Show only findings of at least SIZE bytes (suffixes K, M, G, T, P: powers of 1024; not with --format prometheus)' -r
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l sort -d 'Order of findings [default: path] (not with --format prometheus)' -r -f -a "path\t'By path, bytewise (the table: in sections by verdict, losses first, critical state first)'
size\t'Largest first, whatever the verdict (the table too: one list, no sections); equal sizes by path, then rows without a size (kept, ignored, structure)'"
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l color -d 'Colour in the table [default: auto, off when NO_COLOR is set or not a terminal] (only with --format table)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l accepted -d 'A previous JSON report, or a list of paths (one per line, `#` comments): matching findings are accepted and never raise the exit code' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l fail-on -d 'Verdicts or severities that make the exit code 1 (comma-separated) [default: every loss verdict]' -r -f -a "unclaimed\t''
broken\t''
new-identity\t''
shadowed\t''
critical\t'Any loss of catalogued state that is critical'
important\t'Any loss of catalogued state that is important or critical'
none\t'Never exit 1 for a loss (errors and broken claims still count)'"
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l suggest -d 'Print a NixOS block that claims the important and critical unclaimed state (instead of the report; exits 0 unless the audit is incomplete)' -r -f -a "nix\t'environment.persistence (impermanence)'
preservation\t'preservation.preserveAt'"
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l suggest-storage -d 'With --suggest: the storage root to persist in [default: /persist]' -r
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l threads -d 'CPU threads for the audit [default: number of cores]; the walk keeps at least 16 directory reads and stats in flight whatever N is' -r
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l progress -d 'Show progress on stderr [default: auto, only when stderr is a terminal]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l no-default-manifest -d 'Do not read ROOT/etc/darlings/manifest.toml'
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l assume-claims -d 'Trust claims without checking them (for trees that cannot show their mounts, like an unbooted image); such claims are marked unverified'
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l flat -d 'List every path of every loss verdict instead of grouping whole subtrees'
complete -c darlings -n "__fish_darlings_using_subcommand audit" -l suggest-all -d 'With --suggest: every unclaimed subtree, not only catalogued state'
complete -c darlings -n "__fish_darlings_using_subcommand audit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l root -d 'Audit DIR as if it were `/`: rules, symlink targets and reported paths are read relative to it [default: /]' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l manifest -d 'Read rules from this manifest (repeatable); ROOT/etc/darlings/manifest.toml is read too when present' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l keep -d 'Claim PATTERN as persisted (repeatable): an absolute path (the path and everything under it) or a glob (`*` does not cross `/`)' -r
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l ignore -d 'Declare PATTERN fine to lose (repeatable)' -r
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l impermanence -d 'Read the claims of NixOS\'s impermanence module: the JSON of `config.environment.persistence` (`-` for stdin; see `darlings` README for the `nix eval` command)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l preservation -d 'Read the claims of NixOS\'s preservation module: the JSON of `config.preservation.preserveAt` (`-` for stdin)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l source -d 'Where the list of state comes from' -r -f -a "auto\t'From the root\'s filesystem: ZFS and btrfs compare with their blank snapshot, anything else is walked'
walk\t'A parallel one-filesystem walk of the root'
zfs\t'`zfs diff -FHt DATASET@SNAPSHOT` of the dataset mounted at the root'
btrfs\t'Compare a btrfs root with its blank snapshot, found next to the root subvolume (--baseline compares with any blank tree instead)'"
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l snapshot -d 'The blank snapshot to compare with (zfs source, and a saved diff\'s hard links) [default: blank]' -r
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l dataset -d 'The ZFS dataset mounted at the root (zfs source) [default: from /proc/self/mountinfo]' -r
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l baseline -d 'Compare with this blank tree (a btrfs blank snapshot, /.zfs/snapshot/blank, a mounted pristine image): the source, instead of what --source chooses' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l zfs-diff -d 'Read a saved `zfs diff -FHt` output (`-` for stdin) instead of walking; the live tree is consulted only where --root says it is mounted' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l strip-prefix -d 'The paths in the diff are below DIR (where the dataset was mounted when diffed): audit them as if DIR were `/`' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l format -d 'Output format' -r -f -a "text\t'Sentences for people'
json\t'One JSON object: the audit\'s finding for the path, and every rule that applies'"
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l threads -d 'CPU threads for the audit [default: number of cores]; the walk keeps at least 16 directory reads and stats in flight whatever N is' -r
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l no-default-manifest -d 'Do not read ROOT/etc/darlings/manifest.toml'
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l assume-claims -d 'Trust claims without checking them (for trees that cannot show their mounts, like an unbooted image); such claims are marked unverified'
complete -c darlings -n "__fish_darlings_using_subcommand explain" -l flat -d 'Explain the path as a --flat audit lists it (not as part of a group)'
complete -c darlings -n "__fish_darlings_using_subcommand explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l root -d 'Audit DIR as if it were `/`: rules, symlink targets and reported paths are read relative to it [default: /]' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l manifest -d 'Read rules from this manifest (repeatable); ROOT/etc/darlings/manifest.toml is read too when present' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l impermanence -d 'Read the claims of NixOS\'s impermanence module: the JSON of `config.environment.persistence` (`-` for stdin; see `darlings` README for the `nix eval` command)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l preservation -d 'Read the claims of NixOS\'s preservation module: the JSON of `config.preservation.preserveAt` (`-` for stdin)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l format -d 'Output format [default: table on a terminal, json otherwise]' -r -f -a "table\t''
json\t''
ndjson\t''
prometheus\t''"
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l verdict -d 'Show only findings with these verdicts (comma-separated); totals still count everything (not with --format prometheus: it has only totals)' -r -f -a "broken\t''
unclaimed\t''
new-identity\t''
shadowed\t'On the root, hidden under a mount point: erased, and invisible'
kept\t''
ignored\t''
recreated\t''
structure\t''
restored\t''"
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l min-size -d 'Show only findings of at least SIZE bytes (suffixes K, M, G, T, P: powers of 1024; not with --format prometheus)' -r
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l sort -d 'Order of findings [default: path] (not with --format prometheus)' -r -f -a "path\t'By path, bytewise (the table: in sections by verdict, losses first, critical state first)'
size\t'Largest first, whatever the verdict (the table too: one list, no sections); equal sizes by path, then rows without a size (kept, ignored, structure)'"
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l color -d 'Colour in the table [default: auto, off when NO_COLOR is set or not a terminal] (only with --format table)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l fail-on -d 'Verdicts or severities that make the exit code 1 (comma-separated) [default: every loss verdict]' -r -f -a "unclaimed\t''
broken\t''
new-identity\t''
shadowed\t''
critical\t'Any loss of catalogued state that is critical'
important\t'Any loss of catalogued state that is important or critical'
none\t'Never exit 1 for a loss (errors and broken claims still count)'"
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l threads -d 'CPU threads for the audit [default: number of cores]; the walk keeps at least 16 directory reads and stats in flight whatever N is' -r
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l no-default-manifest -d 'Do not read ROOT/etc/darlings/manifest.toml'
complete -c darlings -n "__fish_darlings_using_subcommand stray" -l flat -d 'List every path of every loss verdict instead of grouping whole subtrees'
complete -c darlings -n "__fish_darlings_using_subcommand stray" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l dataset -d 'ZFS: the root dataset (e.g. rpool/local/root); without --dataset, --device or --mountpoint, the dataset or subvolume mounted at / is meant' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l device -d 'btrfs: the filesystem\'s device; its top-level volume is mounted at /run/darlings/btrfs-top while darlings works' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l mountpoint -d 'btrfs: where the top-level volume (subvolid=5) is already mounted' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l subvolume -d 'btrfs: the root subvolume, relative to the top-level volume' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l snapshot -d 'ZFS: the blank snapshot of the dataset' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l blank -d 'btrfs: the read-only blank subvolume the root is recreated from' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l archive-dataset -d 'ZFS: the dataset that keeps the archives of this root, one per root (e.g. rpool/safe/darlings/root)' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l old-roots -d 'btrfs: the directory of the top-level volume that keeps old roots' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l wait -d 'Wait up to SECONDS for another darlings that holds the target\'s lock (a rollback, mark or record); 0 refuses at once, naming its pid' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l manifest -d 'Read rules from this manifest (repeatable); ROOT/etc/darlings/manifest.toml is read too when present' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l keep -d 'Claim PATTERN as persisted (repeatable): an absolute path (the path and everything under it) or a glob (`*` does not cross `/`)' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l ignore -d 'Declare PATTERN fine to lose (repeatable)' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l impermanence -d 'Read the claims of NixOS\'s impermanence module: the JSON of `config.environment.persistence` (`-` for stdin; see `darlings` README for the `nix eval` command)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l preservation -d 'Read the claims of NixOS\'s preservation module: the JSON of `config.preservation.preserveAt` (`-` for stdin)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l retain -d 'Keep the newest N archives (with --retain-days: keep what either keeps)' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l retain-days -d 'Keep archives younger than D days (the newest is always kept)' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l format -d 'Output format of the plan and the result' -r -f -a "text\t''
json\t''"
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l threads -d 'CPU threads for the audit [default: number of cores]; the walk keeps at least 16 directory reads and stats in flight whatever N is' -r
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l no-default-manifest -d 'Do not read ROOT/etc/darlings/manifest.toml'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l assume-claims -d 'Trust claims without checking them (for trees that cannot show their mounts, like an unbooted image); such claims are marked unverified'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l dry-run -d 'Show the plan and stop (exit 0 only when it would be allowed)'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l yes -d 'Do not ask (required when stdin is not a terminal)'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l force -d 'Erase even though the audit finds broken claims or critical unclaimed state (or, with --initrd, no recorded audit)'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l live -d 'Allow erasing the running root (dangerous: its programs keep running on files that vanish; normally the initrd does this before mounting)'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l destroy-newer -d 'ZFS: consent to destroying snapshots newer than the blank one (zfs rollback -r)'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l destroy-clones -d 'ZFS: consent to destroying clones of those snapshots (zfs rollback -R)'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l writable-archive -d 'btrfs: leave the old root (the archive) writable instead of making it read-only'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -l initrd -d 'Run from the initrd: claims are assumed (nothing persistent is mounted), the audit recorded at shutdown (`darlings record`) decides, and a refusal leaves the root as it is, logs why and exits 0; no --yes needed'
complete -c darlings -n "__fish_darlings_using_subcommand rollback" -s h -l help -d 'Print help'
complete -c darlings -n "__fish_darlings_using_subcommand mark" -l dataset -d 'ZFS: the root dataset (e.g. rpool/local/root); without --dataset, --device or --mountpoint, the dataset or subvolume mounted at / is meant' -r
complete -c darlings -n "__fish_darlings_using_subcommand mark" -l device -d 'btrfs: the filesystem\'s device; its top-level volume is mounted at /run/darlings/btrfs-top while darlings works' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand mark" -l mountpoint -d 'btrfs: where the top-level volume (subvolid=5) is already mounted' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand mark" -l subvolume -d 'btrfs: the root subvolume, relative to the top-level volume' -r
complete -c darlings -n "__fish_darlings_using_subcommand mark" -l wait -d 'Wait up to SECONDS for another darlings that holds the target\'s lock (a rollback, mark or record); 0 refuses at once, naming its pid' -r
complete -c darlings -n "__fish_darlings_using_subcommand mark" -l off -d 'Remove the mark instead'
complete -c darlings -n "__fish_darlings_using_subcommand mark" -s h -l help -d 'Print help'
complete -c darlings -n "__fish_darlings_using_subcommand archives" -l dataset -d 'ZFS: the root dataset (e.g. rpool/local/root); without --dataset, --device or --mountpoint, the dataset or subvolume mounted at / is meant' -r
complete -c darlings -n "__fish_darlings_using_subcommand archives" -l device -d 'btrfs: the filesystem\'s device; its top-level volume is mounted at /run/darlings/btrfs-top while darlings works' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand archives" -l mountpoint -d 'btrfs: where the top-level volume (subvolid=5) is already mounted' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand archives" -l archive-dataset -d 'ZFS: the dataset that keeps the archives of this root, one per root (e.g. rpool/safe/darlings/root)' -r
complete -c darlings -n "__fish_darlings_using_subcommand archives" -l old-roots -d 'btrfs: the directory of the top-level volume that keeps old roots' -r
complete -c darlings -n "__fish_darlings_using_subcommand archives" -l format -d 'Output format' -r -f -a "text\t''
json\t''"
complete -c darlings -n "__fish_darlings_using_subcommand archives" -s h -l help -d 'Print help'
complete -c darlings -n "__fish_darlings_using_subcommand restore" -l dataset -d 'ZFS: the root dataset (e.g. rpool/local/root); without --dataset, --device or --mountpoint, the dataset or subvolume mounted at / is meant' -r
complete -c darlings -n "__fish_darlings_using_subcommand restore" -l device -d 'btrfs: the filesystem\'s device; its top-level volume is mounted at /run/darlings/btrfs-top while darlings works' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand restore" -l mountpoint -d 'btrfs: where the top-level volume (subvolid=5) is already mounted' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand restore" -l archive-dataset -d 'ZFS: the dataset that keeps the archives of this root, one per root (e.g. rpool/safe/darlings/root)' -r
complete -c darlings -n "__fish_darlings_using_subcommand restore" -l old-roots -d 'btrfs: the directory of the top-level volume that keeps old roots' -r
complete -c darlings -n "__fish_darlings_using_subcommand restore" -l from -d 'The archive to copy from (a name from `darlings archives`) [default: the newest that holds data]' -r
complete -c darlings -n "__fish_darlings_using_subcommand restore" -l root -d 'Where the root is mounted [default: /]' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand restore" -l force -d 'Replace what exists at PATH (as an entry: a symlink itself, never what it points to)'
complete -c darlings -n "__fish_darlings_using_subcommand restore" -l dry-run -d 'Show what would be made, copied and replaced, and stop'
complete -c darlings -n "__fish_darlings_using_subcommand restore" -s h -l help -d 'Print help'
complete -c darlings -n "__fish_darlings_using_subcommand record" -l device -d 'btrfs: the filesystem\'s device (the record is kept in its top-level volume); ZFS: --dataset (also the audit\'s) and --archive-dataset' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l mountpoint -d 'btrfs: where the top-level volume (subvolid=5) is already mounted' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l subvolume -d 'btrfs: the root subvolume, relative to the top-level volume' -r
complete -c darlings -n "__fish_darlings_using_subcommand record" -l archive-dataset -d 'ZFS: the dataset that keeps the archives; the record is kept in its child `darlings-record`' -r
complete -c darlings -n "__fish_darlings_using_subcommand record" -l wait -d 'Wait up to SECONDS for another darlings that holds the target\'s lock (a rollback, mark or record); 0 refuses at once, naming its pid' -r
complete -c darlings -n "__fish_darlings_using_subcommand record" -l root -d 'Audit DIR as if it were `/`: rules, symlink targets and reported paths are read relative to it [default: /]' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l manifest -d 'Read rules from this manifest (repeatable); ROOT/etc/darlings/manifest.toml is read too when present' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l keep -d 'Claim PATTERN as persisted (repeatable): an absolute path (the path and everything under it) or a glob (`*` does not cross `/`)' -r
complete -c darlings -n "__fish_darlings_using_subcommand record" -l ignore -d 'Declare PATTERN fine to lose (repeatable)' -r
complete -c darlings -n "__fish_darlings_using_subcommand record" -l impermanence -d 'Read the claims of NixOS\'s impermanence module: the JSON of `config.environment.persistence` (`-` for stdin; see `darlings` README for the `nix eval` command)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l preservation -d 'Read the claims of NixOS\'s preservation module: the JSON of `config.preservation.preserveAt` (`-` for stdin)' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l source -d 'Where the list of state comes from' -r -f -a "auto\t'From the root\'s filesystem: ZFS and btrfs compare with their blank snapshot, anything else is walked'
walk\t'A parallel one-filesystem walk of the root'
zfs\t'`zfs diff -FHt DATASET@SNAPSHOT` of the dataset mounted at the root'
btrfs\t'Compare a btrfs root with its blank snapshot, found next to the root subvolume (--baseline compares with any blank tree instead)'"
complete -c darlings -n "__fish_darlings_using_subcommand record" -l snapshot -d 'The blank snapshot to compare with (zfs source, and a saved diff\'s hard links) [default: blank]' -r
complete -c darlings -n "__fish_darlings_using_subcommand record" -l dataset -d 'The ZFS dataset mounted at the root (zfs source) [default: from /proc/self/mountinfo]' -r
complete -c darlings -n "__fish_darlings_using_subcommand record" -l baseline -d 'Compare with this blank tree (a btrfs blank snapshot, /.zfs/snapshot/blank, a mounted pristine image): the source, instead of what --source chooses' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l zfs-diff -d 'Read a saved `zfs diff -FHt` output (`-` for stdin) instead of walking; the live tree is consulted only where --root says it is mounted' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l strip-prefix -d 'The paths in the diff are below DIR (where the dataset was mounted when diffed): audit them as if DIR were `/`' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l accepted -d 'A previous JSON report, or a list of paths (one per line, `#` comments): matching findings are accepted and never raise the exit code' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand record" -l fail-on -d 'Verdicts or severities that make the exit code 1 (comma-separated) [default: every loss verdict]' -r -f -a "unclaimed\t''
broken\t''
new-identity\t''
shadowed\t''
critical\t'Any loss of catalogued state that is critical'
important\t'Any loss of catalogued state that is important or critical'
none\t'Never exit 1 for a loss (errors and broken claims still count)'"
complete -c darlings -n "__fish_darlings_using_subcommand record" -l threads -d 'CPU threads for the audit [default: number of cores]; the walk keeps at least 16 directory reads and stats in flight whatever N is' -r
complete -c darlings -n "__fish_darlings_using_subcommand record" -l progress -d 'Show progress on stderr [default: auto, only when stderr is a terminal]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c darlings -n "__fish_darlings_using_subcommand record" -l invalidate -d 'Only remove the recorded audit (at boot: a record is used at most once)'
complete -c darlings -n "__fish_darlings_using_subcommand record" -l dry-run -d 'Audit and print the record, keep nothing (no target needed)'
complete -c darlings -n "__fish_darlings_using_subcommand record" -l no-default-manifest -d 'Do not read ROOT/etc/darlings/manifest.toml'
complete -c darlings -n "__fish_darlings_using_subcommand record" -l assume-claims -d 'Trust claims without checking them (for trees that cannot show their mounts, like an unbooted image); such claims are marked unverified'
complete -c darlings -n "__fish_darlings_using_subcommand record" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c darlings -n "__fish_darlings_using_subcommand status" -l dataset -d 'ZFS: the root dataset (e.g. rpool/local/root); without --dataset, --device or --mountpoint, the dataset or subvolume mounted at / is meant' -r
complete -c darlings -n "__fish_darlings_using_subcommand status" -l device -d 'btrfs: the filesystem\'s device; its top-level volume is mounted at /run/darlings/btrfs-top while darlings works' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand status" -l mountpoint -d 'btrfs: where the top-level volume (subvolid=5) is already mounted' -r -F
complete -c darlings -n "__fish_darlings_using_subcommand status" -l subvolume -d 'btrfs: the root subvolume, relative to the top-level volume' -r
complete -c darlings -n "__fish_darlings_using_subcommand status" -l archive-dataset -d 'ZFS: the dataset that keeps the archives of this root, one per root (e.g. rpool/safe/darlings/root)' -r
complete -c darlings -n "__fish_darlings_using_subcommand status" -l old-roots -d 'btrfs: the directory of the top-level volume that keeps old roots' -r
complete -c darlings -n "__fish_darlings_using_subcommand status" -l format -d 'Output format' -r -f -a "text\t'Lines for people'
json\t'One JSON object: the mark, the last rollback, the record, the archives'
prometheus\t'node_exporter textfile metrics (`darlings_rollback_*`, `darlings_archives*`)'"
complete -c darlings -n "__fish_darlings_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c darlings -n "__fish_darlings_using_subcommand nix; and not __fish_seen_subcommand_from expr help" -s h -l help -d 'Print help'
complete -c darlings -n "__fish_darlings_using_subcommand nix; and not __fish_seen_subcommand_from expr help" -f -a "expr" -d 'Print the builtins-only `--apply` expression for a module\'s value'
complete -c darlings -n "__fish_darlings_using_subcommand nix; and not __fish_seen_subcommand_from expr help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c darlings -n "__fish_darlings_using_subcommand nix; and __fish_seen_subcommand_from expr" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c darlings -n "__fish_darlings_using_subcommand nix; and __fish_seen_subcommand_from help" -f -a "expr" -d 'Print the builtins-only `--apply` expression for a module\'s value'
complete -c darlings -n "__fish_darlings_using_subcommand nix; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c darlings -n "__fish_darlings_using_subcommand completions" -s h -l help -d 'Print help'
complete -c darlings -n "__fish_darlings_using_subcommand man" -s h -l help -d 'Print help'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "audit" -d 'Walk the root and report the state the next boot will erase (the default)'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "explain" -d 'Show every rule that matches PATH, which one decides, and why'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "stray" -d 'List what lies in the persistent storage roots of --impermanence / --preservation but is no longer declared by any claim (read-only)'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "rollback" -d 'Erase the ephemeral root now: roll it back to its blank snapshot, after showing the plan, behind guards, keeping a way back'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "mark" -d 'Mark a root dataset or subvolume as ephemeral (rollback refuses unmarked targets)'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "archives" -d 'List the archives rollback kept (the way back), newest first'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "restore" -d 'Copy a path back from an archive into the root (never overwriting without --force)'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "record" -d 'Record the audit of the running root for the next boot\'s rollback (run it at shutdown: the initrd cannot check claims)'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "status" -d 'Show a root\'s mark, the last rollback (or why it was refused), the recorded audit and the archives'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "nix" -d 'Nix helpers: `darlings nix expr impermanence|preservation` prints the `--apply` expression that makes `nix eval --json` of the module\'s value work on every revision'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "completions" -d 'Print shell completions for SHELL to stdout'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "man" -d 'Print a man page (roff) to stdout: the command\'s, or a subcommand\'s (`man nix expr`)'
complete -c darlings -n "__fish_darlings_using_subcommand help; and not __fish_seen_subcommand_from audit explain stray rollback mark archives restore record status nix completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c darlings -n "__fish_darlings_using_subcommand help; and __fish_seen_subcommand_from nix" -f -a "expr" -d 'Print the builtins-only `--apply` expression for a module\'s value'
