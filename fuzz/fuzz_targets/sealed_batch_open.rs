//! Tampered sealed batches: opening is an error, never wrong plaintext or a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logflux_crypto::{BatchSealer, Dek, RecordBinding, SealingKey, open_batch};
use logflux_proto::{Entry, Level};
use std::sync::OnceLock;

const BINDING: RecordBinding<'static> = RecordBinding {
    tenant: "t",
    application: "a",
    key_id: "k",
    record_id: "r",
};

fn fixture() -> &'static (SealingKey, [u8; 12], Vec<u8>, Vec<Entry>) {
    static F: OnceLock<(SealingKey, [u8; 12], Vec<u8>, Vec<Entry>)> = OnceLock::new();
    F.get_or_init(|| {
        let key = SealingKey::new(&Dek::from_bytes(&[7; 32]).expect("32 bytes"));
        let entries = vec![Entry::new(1, Level::Error, "s", "payload"); 3];
        let s = BatchSealer::new(1)
            .seal(&key, &BINDING, &entries)
            .expect("seal");
        (key, s.nonce, s.ciphertext, entries)
    })
}

fuzz_target!(|data: &[u8]| {
    let (key, nonce, ct, entries) = fixture();
    // Random bytes as ciphertext.
    assert!(open_batch(key, &BINDING, nonce, data).is_err() || data == ct.as_slice());
    // XOR the input into the real ciphertext: only an all-zero mask may open.
    let mut tampered = ct.clone();
    let mut changed = false;
    for (i, b) in data.iter().enumerate().take(tampered.len()) {
        tampered[i] ^= b;
        changed |= *b != 0;
    }
    match open_batch(key, &BINDING, nonce, &tampered) {
        Ok(opened) => {
            assert!(!changed, "tampered ciphertext opened");
            assert_eq!(&opened, entries);
        }
        Err(_) => assert!(changed),
    }
});
