//! Mount lifecycle. STUB.
