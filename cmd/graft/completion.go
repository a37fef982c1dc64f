package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts ask graft itself for the words that can follow
// (urfave/cli's --generate-bash-completion); fish gets a static script.
const bashCompletion = `# graft bash completion: source <(graft completion bash)
_graft_complete() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  [[ ${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "${cur}"))
  return 0
}
complete -o default -F _graft_complete graft
`

const zshCompletion = `#compdef graft
# graft zsh completion: source <(graft completion zsh)
_graft() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _graft graft
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script",
		ArgsUsage: "bash|zsh|fish",
		Description: `Examples:
   source <(graft completion bash)
   graft completion zsh > "${fpath[1]}/_graft"
   graft completion fish > ~/.config/fish/completions/graft.fish`,
		Flags: []cli.Flag{quietFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef(c, "completion: give one shell: bash, zsh or fish")
			}
			switch sh := c.Args().First(); sh {
			case "bash":
				_, err := fmt.Fprint(c.App.Writer, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(c.App.Writer, zshCompletion)
				return err
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(c.App.Writer, s)
				return err
			default:
				msg := fmt.Sprintf("completion %q: use bash, zsh or fish", sh)
				if s := nearest(sh, []string{"bash", "zsh", "fish"}); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
				return usagef(c, "%s", msg)
			}
		},
	}
}
