//! Pseudo-terminals for `launcher exec -it` (pty(7)).
//!
//! The pty is made in the pod's own devpts (through pause's root, so `tty` in the
//! pod names a /dev/pts/N that is there), its terminal end handed to the command as
//! fds 0-2 and controlling terminal, and the multiplexer end kept here: every byte
//! typed goes to it raw, so ^C and ^Z become signals in the pod's line discipline,
//! for the pod's foreground job, and never in this process.
//!
//! The local terminal is put in raw mode for the session and restored when
//! [`RawMode`] drops, on every path out of `exec`: the signals that end it are
//! taken through a signalfd, never by a handler that would skip the restore.

use nix::sys::termios::{self, SetArg, Termios};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// kubectl's words when `-t` is asked for and standard input is no terminal.
pub const NOT_A_TERMINAL: &str =
    "Unable to use a TTY - input is not a terminal or the right kind of file";

/// Is standard input a terminal?
pub fn stdin_is_terminal() -> bool {
    termios::tcgetattr(io::stdin().as_fd()).is_ok()
}

/// The multiplexer end of a pseudo-terminal (non-blocking), kept by `exec`.
pub struct Pty {
    pub master: OwnedFd,
}

impl Pty {
    /// A new pty in the devpts of the file system rooted at `root` (a pod's
    /// /proc/PID/root), the size of the local terminal; with its terminal end, for
    /// the command.
    pub fn open_in(root: &File) -> io::Result<(Pty, OwnedFd)> {
        let master = crate::sys::open_ptmx_in(root)?;
        let peer = crate::sys::pty_peer(&master)?;
        let pty = Pty { master };
        pty.follow_local_size();
        Ok((pty, peer))
    }

    /// Gives the pty the local terminal's size (at start, and on SIGWINCH).
    pub fn follow_local_size(&self) {
        if let Ok(ws) = crate::sys::window_size(io::stdin().as_raw_fd()) {
            let _ = crate::sys::set_window_size(self.master.as_raw_fd(), &ws);
        }
    }
}

/// The local terminal in raw mode until dropped: no echo, no line editing, no
/// signals from ^C or ^Z, no output processing; the pod's terminal does all that.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enter() -> io::Result<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}
