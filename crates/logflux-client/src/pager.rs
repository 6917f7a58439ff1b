//! A pager for output on a terminal, as journalctl has one: `$LOGFLUX_PAGER`, else `$PAGER`,
//! else `less`; empty or `cat` means none. `less` gets `LESS=FRSXMK` unless `LESS` is set (quit
//! at once when the output fits a screen, colours, long lines chopped, screen not cleared,
//! Ctrl-C quits). Never when stdout is not a terminal, with `--no-pager`, or for `tail -f`.

use std::io::Write;
use std::process::{Child, Command, Stdio};

/// The pager command to run, if any: the decision alone, from whether stdout is a terminal,
/// `--no-pager`, and the environment (`env` looks a variable up).
pub(crate) fn choose(
    stdout_is_terminal: bool,
    no_pager: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    if !stdout_is_terminal || no_pager {
        return None;
    }
    let cmd = env("LOGFLUX_PAGER")
        .or_else(|| env("PAGER"))
        .unwrap_or_else(|| "less".to_owned());
    let cmd = cmd.trim();
    (!cmd.is_empty() && cmd != "cat").then(|| cmd.to_owned())
}

/// Whether `program` is an executable file on `$PATH`.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            std::fs::metadata(d.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// A running pager.
#[derive(Debug)]
pub(crate) struct Pager {
    child: Child,
}

impl Pager {
    /// Starts `cmd` (through `sh -c`, so it may carry arguments) reading what is written to
    /// the returned pipe. `None` when it cannot start: output then goes to stdout.
    pub(crate) fn spawn(cmd: &str) -> Option<(Pager, std::process::ChildStdin)> {
        // The default must exist, or nothing at all would be shown.
        if cmd == "less" && !on_path("less") {
            return None;
        }
        let mut c = Command::new("sh");
        c.arg("-c").arg(cmd).stdin(Stdio::piped());
        if std::env::var_os("LESS").is_none() {
            c.env("LESS", "FRSXMK");
        }
        if std::env::var_os("LESSCHARSET").is_none() {
            c.env("LESSCHARSET", "utf-8");
        }
        match c.spawn() {
            Ok(mut child) => {
                let stdin = child.stdin.take()?;
                Some((Pager { child }, stdin))
            }
            Err(e) => {
                eprintln!("logflux: the pager {cmd:?} did not start ({e}); printing directly");
                None
            }
        }
    }

    /// Waits for the user to leave the pager (its input must be closed first).
    pub(crate) fn wait(mut self) {
        let _ = self.child.wait();
    }
}

/// The buffer asked for when stdout is a pipe: Linux's default of 64 KiB made a listing's
/// writes (a record's entries at a time, ~120 KiB) wait for the reader several times each, a
/// context switch every 64 KiB (8.5 % of a full listing's samples in round 3's profile, mostly
/// the wait: measured alone, it shortened the wall time more than the CPU time). 1 MiB is
/// `fs.pipe-max-size`'s default, what an unprivileged process may ask for.
const PIPE_BYTES: usize = 1 << 20;

/// Grows the pipe `fd` is (when it is one) to [`PIPE_BYTES`]. Not a pipe, already as large,
/// or refused (a lower `fs.pipe-max-size`, the user's pipe pages spent): left as it is — the
/// output is the same, only written in smaller steps.
#[cfg(target_os = "linux")]
pub(crate) fn enlarge_pipe(fd: impl std::os::fd::AsFd) {
    if rustix::pipe::fcntl_getpipe_size(&fd).is_ok_and(|n| n < PIPE_BYTES) {
        let _ = rustix::pipe::fcntl_setpipe_size(&fd, PIPE_BYTES);
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enlarge_pipe<T>(_fd: T) {}

/// Where output goes: stdout, or a pager's input.
pub(crate) struct Out {
    writer: Box<dyn Write>,
    pager: Option<Pager>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out").field("pager", &self.pager).finish()
    }
}

impl Out {
    /// A pager when [`choose`] says so and it starts, else stdout; a pipe there is enlarged
    /// when `enlarge` (output that ends: a process that keeps running, `tail -f`, would hold
    /// the larger pipe's pages against the user's allowance for as long as it runs).
    pub(crate) fn open(no_pager: bool, enlarge: bool) -> Out {
        use std::io::IsTerminal as _;
        let env = |k: &str| std::env::var(k).ok();
        let pager = choose(std::io::stdout().is_terminal(), no_pager, &env)
            .and_then(|cmd| Pager::spawn(&cmd));
        match pager {
            Some((pager, stdin)) => Out {
                writer: Box::new(stdin),
                pager: Some(pager),
            },
            None => {
                let stdout = std::io::stdout().lock();
                if enlarge {
                    enlarge_pipe(&stdout);
                }
                Out {
                    writer: Box::new(stdout),
                    pager: None,
                }
            }
        }
    }

    /// Splits into the writer and the pager to wait for once the writer is dropped.
    pub(crate) fn split(self) -> (Box<dyn Write>, Option<Pager>) {
        (self.writer, self.pager)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_pipe_is_enlarged_and_anything_else_left_alone() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let before = rustix::pipe::fcntl_getpipe_size(&w).unwrap();
        assert!(before < PIPE_BYTES, "the default pipe is {before} bytes");
        let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(PIPE_BYTES);
        enlarge_pipe(&w);
        // Both ends are the same pipe. Linux refuses a size above `fs.pipe-max-size` (unless
        // privileged) rather than capping it: then the pipe is left as it was.
        let after = rustix::pipe::fcntl_getpipe_size(&r).unwrap();
        if max >= PIPE_BYTES {
            assert_eq!(after, PIPE_BYTES);
        } else {
            assert!(after == PIPE_BYTES || after == before, "{after} bytes");
        }
        // A file is not a pipe: nothing happens, nothing fails.
        let f = tempfile::tempfile().unwrap();
        enlarge_pipe(&f);
    }

    #[test]
    fn a_pager_only_on_a_terminal_and_not_when_refused() {
        let none = env(&[]);
        assert_eq!(choose(true, false, &none).as_deref(), Some("less"));
        assert_eq!(choose(false, false, &none), None, "piped: never");
        assert_eq!(choose(true, true, &none), None, "--no-pager");
    }

    #[test]
    fn logflux_pager_then_pager_and_empty_or_cat_mean_none() {
        let both = env(&[("LOGFLUX_PAGER", "most -s"), ("PAGER", "more")]);
        assert_eq!(choose(true, false, &both).as_deref(), Some("most -s"));
        let pager = env(&[("PAGER", "more")]);
        assert_eq!(choose(true, false, &pager).as_deref(), Some("more"));
        for off in ["", "cat", " cat "] {
            assert_eq!(choose(true, false, &env(&[("LOGFLUX_PAGER", off)])), None);
            assert_eq!(choose(true, false, &env(&[("PAGER", off)])), None);
        }
        // LOGFLUX_PAGER empty wins over PAGER: no pager.
        let off = env(&[("LOGFLUX_PAGER", ""), ("PAGER", "more")]);
        assert_eq!(choose(true, false, &off), None);
    }
}
