package main

import "context"

func helpCommand() command {
	return command{
		name:    "help",
		summary: "show help for hc-agent or one of its commands",
		usage: `[COMMAND]

Without COMMAND, lists the commands; with COMMAND, the same as
"hc-agent COMMAND --help".`,
		run: func(ctx context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			if err := env.parse(fs, args); err != nil {
				return err
			}
			switch fs.NArg() {
			case 0:
				env.printGlobalUsage(env.stdout)
				return nil
			case 1:
				cmd, ok := findCommand(fs.Arg(0))
				if !ok {
					return usagef("unknown command %q", fs.Arg(0))
				}
				env.cmd = cmd
				return cmd.run(ctx, env, []string{"--help"})
			default:
				return usagef("takes at most one COMMAND")
			}
		},
	}
}
