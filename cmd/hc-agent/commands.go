package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/logging"
	"github.com/hc-agent/hc-agent/metrics"
)

// command is one subcommand of hc-agent.
//
// To add a command (apply, status, prepare-image, ...):
//  1. create cmd_<name>.go with a func <name>Command() command whose run
//     starts with
//     fs := env.flagSet()
//     ... fs.Bool(...) etc. for its own flags ...
//     if err := env.parse(fs, args); err != nil { return err }
//     and ends by returning nil, a usage error (usagef) or a runtime error;
//  2. add one line to the table in commands() below.
//
// Global flags (--config, --log-level, --log-format) are registered on every
// command's FlagSet by env.flagSet, and --help is handled by env.parse.
// Use env.loadConfig for the configuration and env.logger for logging.
type command struct {
	name    string
	summary string // one line for "hc-agent --help", lowercase, no period
	usage   string // synopsis line after "hc-agent NAME", then what it does
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// commands is the command table, in the order "hc-agent --help" lists them.
func commands() []command {
	return []command{
		runCommand(),
		statusCommand(),
		handoverCommand(),
		reloadCommand(),
		applyCommand(),
		metadataCommand(),
		checkConfigCommand(),
		prepareImageCommand(),
		versionCommand(),
		helpCommand(),
	}
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// cliEnv is what a command gets from the framework: output streams, the
// environment, the global flags and the command being run.
type cliEnv struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	// Global flags.
	configPath string // --config
	logLevel   string // --log-level, "" means log.level from the config
	logFormat  string // --log-format, "" means log.format from the config

	cmd command // the command being run

	// level is the level of the logger that logger built last: a reload
	// changes it in place (setLogLevel).
	level *slog.LevelVar
}

func newEnv(stdout, stderr io.Writer, getenv func(string) string) *cliEnv {
	return &cliEnv{stdout: stdout, stderr: stderr, getenv: getenv, configPath: config.DefaultPath}
}

// errHelpShown means --help printed the usage: exit 0.
var errHelpShown = errors.New("help shown")

// usageError is a mistake on the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error (exit status 2).
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

const globalUsage = `Usage: hc-agent [global flags] COMMAND [flags] [args]

hc-agent configures the private networks and floating IPs of a Hetzner Cloud
server from its metadata service, and moves floating IPs between the servers
of a failover group through the Hetzner Cloud API.
`

// globalFooter follows the flags in "hc-agent --help".
const globalFooter = `
Environment:
  HCLOUD_TOKEN           Hetzner Cloud API token (or api.token_file); needed
                         for floating IPs and failover groups
  HCLOUD_ENDPOINT        API endpoint, overrides api.endpoint

Exit status: 0 on success, 1 on an error, 2 on a usage error, 78 (EX_CONFIG)
on a configuration error.

Run 'hc-agent COMMAND --help' for a command's flags and details.
`

// helpWidth is the width help text is wrapped to.
const helpWidth = 80

// execute runs one command line and returns the exit code.
func execute(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("hc-agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env.registerGlobal(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			env.printGlobalUsage(env.stdout)
			return 0
		}
		fmt.Fprintf(env.stderr, "hc-agent: %s\nRun 'hc-agent --help' for usage.\n", err)
		return 2
	}
	if fs.NArg() == 0 {
		env.printGlobalUsage(env.stderr)
		return 2
	}
	name := fs.Arg(0)
	cmd, ok := findCommand(name)
	if !ok {
		fmt.Fprintf(env.stderr, "hc-agent: unknown command %q\nRun 'hc-agent --help' for the list of commands.\n", name)
		return 2
	}
	env.cmd = cmd
	err := cmd.run(ctx, env, fs.Args()[1:])
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(env.stderr, "hc-agent %s: %s\nRun 'hc-agent %s --help' for usage.\n", cmd.name, oneLine(ue.msg), cmd.name)
		return 2
	case config.IsError(err):
		fmt.Fprintf(env.stderr, "hc-agent: %s\n", oneLine(err.Error()))
		return config.ExitCode
	default:
		fmt.Fprintf(env.stderr, "hc-agent: %s\n", oneLine(err.Error()))
		return 1
	}
}

// oneLine keeps a reason on one line (joined errors have several).
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}

var globalFlagNames = map[string]bool{"config": true, "log-level": true, "log-format": true}

// registerGlobal adds the global flags to fs. They are registered on the
// top-level FlagSet and again on each command's, so they work before and
// after COMMAND; the current values are the defaults the second time.
func (env *cliEnv) registerGlobal(fs *flag.FlagSet) {
	fs.StringVar(&env.configPath, "config", env.configPath, "configuration file `PATH`")
	fs.Func("log-level", "log `LEVEL`: debug, info, warn or error (default: log.level of the config, info)", func(s string) error {
		if _, err := logging.ParseLevel(s); err != nil {
			return errors.New("must be debug, info, warn or error")
		}
		env.logLevel = s
		return nil
	})
	fs.Func("log-format", "log `FORMAT`: text or json (default: log.format of the config, text)", func(s string) error {
		f, err := logging.ParseFormat(s)
		if err != nil {
			return errors.New("must be text or json")
		}
		env.logFormat = f
		return nil
	})
}

// flagSet returns a FlagSet for the running command with the global flags
// registered. Add the command's flags, then call env.parse.
func (env *cliEnv) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("hc-agent "+env.cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env.registerGlobal(fs)
	return fs
}

// parse parses args into fs; fs.Args() are then the positional arguments.
// Flags may follow positional arguments ("metadata hostname --json");
// everything after "--" is positional. --help prints the command's usage to
// stdout and returns errHelpShown; a bad flag returns a usage error.
func (env *cliEnv) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(flagsFirst(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			env.printCommandUsage(env.stdout, fs)
			return errHelpShown
		}
		return &usageError{msg: err.Error()}
	}
	return nil
}

// flagsFirst moves the flags of args in front of the positional arguments,
// which the flag package wants, and separates the two with "--" so that
// positional arguments are never taken for flags.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil || isBoolFlag(f) || i+1 == len(args) {
			continue // unknown flags are reported by fs.Parse
		}
		flags = append(flags, args[i+1]) // the flag's value
		i++
	}
	if len(positional) == 0 {
		return flags
	}
	return append(append(flags, "--"), positional...)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (env *cliEnv) printGlobalUsage(w io.Writer) {
	fmt.Fprint(w, globalUsage)
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nGlobal flags (also accepted after COMMAND):")
	fs := flag.NewFlagSet("hc-agent", flag.ContinueOnError)
	(&cliEnv{configPath: config.DefaultPath}).registerGlobal(fs)
	printFlags(w, fs, func(string) bool { return true })
	fmt.Fprint(w, globalFooter)
}

// printCommandUsage prints "Usage: hc-agent NAME SYNOPSIS", the command's
// description and its flags. The first line of command.usage is the
// synopsis (possibly empty), the rest the description.
func (env *cliEnv) printCommandUsage(w io.Writer, fs *flag.FlagSet) {
	synopsis, body, _ := strings.Cut(env.cmd.usage, "\n")
	fmt.Fprintln(w, strings.TrimSpace("Usage: hc-agent "+env.cmd.name+" "+strings.TrimSpace(synopsis)))
	if body = strings.TrimSpace(body); body != "" {
		fmt.Fprintf(w, "\n%s\n", body)
	}
	var own bool
	fs.VisitAll(func(f *flag.Flag) { own = own || !globalFlagNames[f.Name] })
	if own {
		fmt.Fprintln(w, "\nFlags:")
		printFlags(w, fs, func(name string) bool { return !globalFlagNames[name] })
	}
	fmt.Fprintln(w, "\nGlobal flags:")
	printFlags(w, fs, func(name string) bool { return globalFlagNames[name] })
}

// printFlags prints the flags of fs that keep accepts, GNU style (--name),
// with the description wrapped to helpWidth next to the flag.
func printFlags(w io.Writer, fs *flag.FlagSet, keep func(name string) bool) {
	const col = 25 // "  " + 22 columns for the flag + " "
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f.Name) {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		head := "--" + f.Name
		if arg != "" {
			head += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		lines := wrap(usage, helpWidth-col)
		if len(head) > col-3 {
			// A long flag gets its own line.
			fmt.Fprintf(w, "  %s\n", head)
		} else {
			fmt.Fprintf(w, "  %-22s %s\n", head, lines[0])
			lines = lines[1:]
		}
		for _, l := range lines {
			fmt.Fprintf(w, "%*s%s\n", col, "", l)
		}
	})
}

// wrap splits text into lines of at most width columns at spaces; a word
// longer than width gets a line of its own. It returns at least one line.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	return append(lines, line)
}

// loadConfig loads the configuration named by --config (a missing file at
// the default path means defaults) and returns it with the path it used.
func (env *cliEnv) loadConfig() (config.Config, string, error) {
	c, err := config.Load(env.configPath)
	return c, env.configPath, err
}

// loadCheckedConfig is loadConfig plus ResolveToken and Validate. It prints
// every problem to stderr as "PATH: problem" (parse errors as
// "PATH:LINE: problem") and then returns one error that counts them, so the
// caller just returns it. Commands that need a complete configuration (run,
// and later apply) use it. Its errors are config.Errors (exit status 78).
func (env *cliEnv) loadCheckedConfig() (config.Config, string, error) {
	c, path, err := env.loadConfig()
	if err != nil {
		var pe *config.ParseError
		if !errors.As(err, &pe) {
			return c, path, &config.Error{Err: err} // cannot open or read
		}
		return c, path, env.reportProblems(path, flatten(err))
	}
	if errs := checkConfig(&c, env.getenv); len(errs) > 0 {
		return c, path, env.reportProblems(path, errs)
	}
	return c, path, nil
}

// checkConfig resolves the token and validates c, returning every problem.
func checkConfig(c *config.Config, getenv func(string) string) []error {
	var errs []error
	if err := config.ResolveToken(c, getenv); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, flatten(c.Validate())...)
	if len(c.Groups) > 0 && c.API.Token == "" {
		errs = append(errs, fmt.Errorf("api token: failover groups need one; set %s or api.token_file", config.EnvToken))
	}
	// The files the configuration names are part of it: a key or web config
	// that does not load is found here, before the daemon starts.
	errs = append(errs, keyFileProblems(*c)...)
	if err := metrics.ValidateWebConfig(c.Metrics.WebConfigFile); err != nil {
		errs = append(errs, fmt.Errorf("metrics.web_config_file: %w", err))
	}
	return errs
}

// reportProblems prints each problem on its own line and returns an error
// that counts them.
func (env *cliEnv) reportProblems(path string, problems []error) error {
	for _, p := range problems {
		var pe *config.ParseError
		switch {
		case errors.As(p, &pe) && pe.Line > 0:
			msg := pe.Msg
			if pe.Key != "" {
				msg = pe.Key + ": " + msg
			}
			fmt.Fprintf(env.stderr, "%s:%d: %s\n", path, pe.Line, msg)
		case errors.As(p, &pe):
			fmt.Fprintf(env.stderr, "%s: %s\n", path, pe)
		default:
			fmt.Fprintf(env.stderr, "%s: %s\n", path, p)
		}
	}
	if len(problems) == 1 {
		return &config.Error{Err: fmt.Errorf("config %s: 1 problem", path)}
	}
	return &config.Error{Err: fmt.Errorf("config %s: %d problems", path, len(problems))}
}

// flatten returns the leaves of a tree of joined and wrapped errors.
func flatten(err error) []error {
	switch e := err.(type) {
	case nil:
		return nil
	case interface{ Unwrap() []error }:
		var out []error
		for _, c := range e.Unwrap() {
			out = append(out, flatten(c)...)
		}
		return out
	}
	if inner := errors.Unwrap(err); inner != nil {
		if _, ok := inner.(interface{ Unwrap() []error }); ok {
			return flatten(inner)
		}
	}
	return []error{err}
}

// logger returns the logger for c, with --log-level and --log-format
// winning over the config, built by logging.New like every logger of
// hc-agent. It writes to stderr (journald adds timestamps, but keeping them
// is harmless and helps outside systemd). Commands that do not validate the
// configuration may see a bad log.level or log.format: the logger then
// keeps the defaults for it and warns, rather than failing a command over
// its logging.
func (env *cliEnv) logger(c config.Config) *slog.Logger {
	level, format := c.Log.Level, c.Log.Format
	if env.logLevel != "" {
		level = env.logLevel
	}
	if env.logFormat != "" {
		format = env.logFormat
	}
	var bad []any
	if _, err := logging.ParseLevel(level); err != nil {
		bad = append(bad, "level", level)
		level = ""
	}
	if _, err := logging.ParseFormat(format); err != nil {
		bad = append(bad, "format", format)
		format = ""
	}
	// Both values parsed above or are "" (the defaults): New cannot fail.
	lvl, _ := logging.ParseLevel(level)
	env.level = new(slog.LevelVar)
	env.level.Set(lvl)
	log, _ := logging.NewVar(env.stderr, env.level, format)
	if len(bad) > 0 {
		log.Warn("invalid log settings in the config, using the defaults for them", bad...)
	}
	return log
}

// fileExists reports whether path names an existing file (for messages).
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// setLogLevel sets the level of the logger that logger built to level (a
// reload of log.level); --log-level on the command line wins over the file.
func (env *cliEnv) setLogLevel(level string) error {
	if env.logLevel != "" || env.level == nil {
		return nil
	}
	lvl, err := logging.ParseLevel(level)
	if err != nil {
		return err
	}
	env.level.Set(lvl)
	return nil
}
