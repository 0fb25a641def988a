//! The workbench's tests beyond its modules' own: driven as a user drives it ([`workbench`]), and in a real
//! window ([`window`], run by `scripts/gui-window.sh` under Xvfb).

mod window;
mod workbench;
