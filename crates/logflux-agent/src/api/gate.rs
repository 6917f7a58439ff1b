//! Admission of TCP connections to the local API.
//!
//! Unauthenticated and authenticated connections are counted apart. Connections that have not
//! authenticated yet are capped, and at the cap a new one closes the *oldest* of them: a flood
//! of idle connections, even from the same loopback address as a legitimate client, can delay
//! that client by at most one authentication deadline, never lock it out. Authenticated
//! connections have their own cap, checked when a connection authenticates. Connections from one
//! non-loopback address (in either state) are capped too; loopback peers are exempt, since every
//! local process shares 127.0.0.1 and a per-address cap there would refuse the legitimate
//! client along with the flood.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::{ConnStateLabel, ReasonLabel};

/// Limits of the TCP listener (`inputs.tcp`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpLimits {
    pub(crate) max_connections: usize,
    pub(crate) max_unauthenticated: usize,
    pub(crate) max_per_peer: usize,
}

/// Counts the listener's connections and decides who is served.
#[derive(Debug)]
pub(crate) struct Gate {
    limits: TcpLimits,
    /// `logflux_agent_tcp_connections_refused_total`.
    refused: Family<ReasonLabel, Counter>,
    /// `logflux_agent_tcp_connections`.
    open: Family<ConnStateLabel, Gauge>,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    next_id: u64,
    /// Unauthenticated connections by arrival, oldest first, each with the signal that closes it.
    pending: BTreeMap<u64, oneshot::Sender<()>>,
    authenticated: usize,
    /// Connections of each non-loopback peer, in either state.
    per_peer: HashMap<IpAddr, usize>,
}

/// Why a connection is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its non-loopback address has `max_connections_per_peer` connections already.
    PerPeer,
    /// `max_connections` authenticated connections are served already.
    Full,
    /// It was closed to make room for a newer unauthenticated connection.
    Evicted,
}

impl Refusal {
    /// The `reason` label of `logflux_agent_tcp_connections_refused_total`.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::PerPeer => "per_peer_limit",
            Refusal::Full => "max_connections",
            Refusal::Evicted => "evicted",
        }
    }
}

/// One admitted connection's place; released when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    id: u64,
    /// Counted in `per_peer` (non-loopback peers only).
    peer: Option<IpAddr>,
    authenticated: bool,
}

impl Gate {
    pub(crate) fn new(
        limits: TcpLimits,
        refused: Family<ReasonLabel, Counter>,
        open: Family<ConnStateLabel, Gauge>,
    ) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            refused,
            open,
            state: Mutex::new(GateState::default()),
        })
    }

    /// Admits a new connection as unauthenticated, closing the oldest unauthenticated one when
    /// at the cap. The receiver fires when this connection is evicted in turn.
    pub(crate) fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
    ) -> Result<(Ticket, oneshot::Receiver<()>), Refusal> {
        let mut s = self.state.lock().expect("gate lock");
        let counted = if peer.is_loopback() {
            None
        } else {
            let n = s.per_peer.entry(peer).or_insert(0);
            if *n >= self.limits.max_per_peer {
                drop(s);
                self.refused(Refusal::PerPeer);
                return Err(Refusal::PerPeer);
            }
            *n += 1;
            Some(peer)
        };
        let mut evicted = 0;
        while s.pending.len() >= self.limits.max_unauthenticated {
            let Some((_, close)) = s.pending.pop_first() else {
                break;
            };
            let _ = close.send(());
            evicted += 1;
        }
        let id = s.next_id;
        s.next_id += 1;
        let (tx, rx) = oneshot::channel();
        s.pending.insert(id, tx);
        self.set_gauges(&s);
        drop(s);
        for _ in 0..evicted {
            self.refused(Refusal::Evicted);
        }
        Ok((
            Ticket {
                gate: self.clone(),
                id,
                peer: counted,
                authenticated: false,
            },
            rx,
        ))
    }

    pub(crate) fn refused(&self, why: Refusal) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: why.reason(),
            })
            .inc();
    }

    fn set_gauges(&self, s: &GateState) {
        let g = &self.open;
        g.get_or_create(&ConnStateLabel {
            state: "unauthenticated",
        })
        .set(s.pending.len() as i64);
        g.get_or_create(&ConnStateLabel {
            state: "authenticated",
        })
        .set(s.authenticated as i64);
    }
}

impl Ticket {
    /// Moves the connection to the authenticated count, unless that is full (counted here) or
    /// the connection was evicted meanwhile (counted when it was).
    pub(crate) fn authenticate(&mut self) -> Result<(), Refusal> {
        if self.authenticated {
            return Ok(());
        }
        let gate = &self.gate;
        let mut s = gate.state.lock().expect("gate lock");
        if !s.pending.contains_key(&self.id) {
            return Err(Refusal::Evicted);
        }
        if s.authenticated >= gate.limits.max_connections {
            drop(s);
            gate.refused(Refusal::Full);
            return Err(Refusal::Full);
        }
        s.pending.remove(&self.id);
        s.authenticated += 1;
        self.authenticated = true;
        gate.set_gauges(&s);
        Ok(())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let gate = &self.gate;
        let mut s = gate.state.lock().expect("gate lock");
        if self.authenticated {
            s.authenticated -= 1;
        } else {
            s.pending.remove(&self.id);
        }
        if let Some(p) = self.peer
            && let Some(n) = s.per_peer.get_mut(&p)
        {
            *n -= 1;
            if *n == 0 {
                s.per_peer.remove(&p);
            }
        }
        gate.set_gauges(&s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(max_connections: usize, max_unauthenticated: usize, max_per_peer: usize) -> Arc<Gate> {
        Gate::new(
            TcpLimits {
                max_connections,
                max_unauthenticated,
                max_per_peer,
            },
            Family::default(),
            Family::default(),
        )
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const REMOTE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn the_oldest_unauthenticated_connection_makes_room() {
        let g = gate(10, 2, 10);
        let (_a, mut ra) = g.admit(LOCAL).unwrap();
        let (_b, mut rb) = g.admit(LOCAL).unwrap();
        let (mut c, _rc) = g.admit(LOCAL).unwrap();
        assert_eq!(ra.try_recv(), Ok(()), "the oldest is closed");
        assert!(rb.try_recv().is_err(), "the others stay");
        c.authenticate().unwrap();
        // Authenticated connections do not count against the unauthenticated cap.
        let (_d, _rd) = g.admit(LOCAL).unwrap();
        assert!(rb.try_recv().is_err());
    }

    #[test]
    fn an_evicted_connection_cannot_authenticate() {
        let g = gate(10, 1, 10);
        let (mut a, _ra) = g.admit(LOCAL).unwrap();
        let (_b, _rb) = g.admit(LOCAL).unwrap();
        assert_eq!(a.authenticate(), Err(Refusal::Evicted));
    }

    #[test]
    fn authenticated_connections_are_capped_and_released() {
        let g = gate(1, 10, 10);
        let (mut a, _ra) = g.admit(LOCAL).unwrap();
        let (mut b, _rb) = g.admit(LOCAL).unwrap();
        a.authenticate().unwrap();
        assert_eq!(b.authenticate(), Err(Refusal::Full));
        drop(a);
        b.authenticate().unwrap();
    }

    #[test]
    fn non_loopback_peers_are_capped_per_address() {
        let g = gate(10, 10, 2);
        let (a, _ra) = g.admit(REMOTE).unwrap();
        let (_b, _rb) = g.admit(REMOTE).unwrap();
        assert_eq!(g.admit(REMOTE).err(), Some(Refusal::PerPeer));
        // Loopback is exempt.
        for _ in 0..5 {
            g.admit(LOCAL).unwrap();
        }
        drop(a);
        g.admit(REMOTE).unwrap();
    }
}
