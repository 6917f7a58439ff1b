//! Golden files for persisted and wire formats: sealed batches (v1, v2) and the token function.
//!
//! The committed files must keep opening, and the current code must keep producing the same
//! bytes, or data already stored becomes unreadable or unsearchable. A failure here means a
//! format changed: add a new version instead. To write the files anew (only for a new format),
//! run with `LOGFLUX_BLESS=1` and commit the diff with a note in docs/formats.md.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_crypto::{
    BatchSealer, Dek, Field, RecordBinding, SealingKey, SearchKey, TokenSet, open_batch,
};
use logflux_proto::{Entry, EntryType, Level, batch};
use serde_json::{Value, json};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn bless() -> bool {
    std::env::var_os("LOGFLUX_BLESS").is_some()
}

fn entries() -> Vec<Entry> {
    let mut a = Entry::new(
        1_763_675_346_545_000_000,
        Level::Error,
        "checkout",
        "payment failed: card declined (code=51)",
    );
    a.metadata.insert("host", "web-1");
    a.metadata.insert("region", "eu-west-1");
    let mut b = Entry::new(-1, Level::Debug, "ünïcödé-源", "line1\nline2\t\u{0}end 😀");
    b.entry_type = EntryType::Metric;
    b.payload_type = "metrics".into();
    let mut c = Entry::new(i64::MAX, Level::Emergency, "s", "");
    c.entry_type = EntryType::TelemetryManaged;
    c.payload_type = "systemd_journal".into();
    c.metadata.insert("_SYSTEMD_UNIT", "nginx.service");
    vec![a, b, c]
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "timestamp_ns": e.timestamp_ns,
        "level": e.level.number(),
        "entry_type": e.entry_type.number(),
        "source": e.source,
        "payload": e.payload,
        "payload_type": e.payload_type,
        "metadata": e.metadata,
    })
}

fn entry_from_json(v: &Value) -> Entry {
    Entry {
        timestamp_ns: v["timestamp_ns"].as_i64().unwrap(),
        level: Level::from_number(v["level"].as_i64().unwrap()).unwrap(),
        entry_type: EntryType::from_number(v["entry_type"].as_i64().unwrap()).unwrap(),
        source: v["source"].as_str().unwrap().into(),
        payload: v["payload"].as_str().unwrap().into(),
        payload_type: v["payload_type"].as_str().unwrap().into(),
        metadata: serde_json::from_value(v["metadata"].clone()).unwrap(),
    }
}

const BINDING: RecordBinding<'static> = RecordBinding {
    tenant: "t_01",
    application: "app_checkout",
    key_id: "k_7f3a",
    record_id: "01JD8Z5W3YV5K2N0Q9R7T6S4P3",
};

/// Batches sealed before padding existed (the zstd frame alone under AES-GCM): frozen, never
/// written anew, they must keep opening.
#[test]
fn sealed_batch_v1_golden() {
    check_sealed_batch_golden("sealed_batch_v1.json", None, Layout::V1);
}

/// Batches sealed today: `zstd frame ‖ skippable frame of zeros` to the Padmé length of the
/// frame plus the skippable frame's 8-byte header.
#[test]
fn sealed_batch_v1_padded_golden() {
    check_sealed_batch_golden(
        "sealed_batch_v1_padded.json",
        Some(
            "LogFlux sealed batch v1, padded: AES-256-GCM(zstd(batch v1) || zstd skippable frame (magic 0x184D2A50) of zeros, to padme(frame length + 8)), AAD = RecordBinding",
        ),
        Layout::V1,
    );
    // What the sealer writes today is padded.
    let path = golden("sealed_batch_v1_padded.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ct = B64.decode(doc["ciphertext_b64"].as_str().unwrap()).unwrap();
    let body = ct.len() - 16;
    assert_eq!(logflux_crypto::padme(body), body);
    let frame = doc["zstd_frame_len"].as_u64().unwrap() as usize;
    assert!(frame < body, "the golden batch carries padding");
    assert_eq!(logflux_crypto::padme(frame + 8), body);
}

/// Batches sealed today: batch v2 (columns, common metadata once) in the padded envelope.
#[test]
fn sealed_batch_v2_golden() {
    check_sealed_batch_golden(
        "sealed_batch_v2.json",
        Some(
            "LogFlux sealed batch v2, padded: AES-256-GCM(zstd(batch v2) || zstd skippable frame (magic 0x184D2A50) of zeros, to padme(frame length + 8)), AAD = RecordBinding",
        ),
        Layout::V2,
    );
    let path = golden("sealed_batch_v2.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(
        doc["batch_plaintext_hex"]
            .as_str()
            .unwrap()
            .starts_with("4c464202")
    );
}

/// A v2 batch of entries that share metadata, as an agent's file input writes them: the
/// common pairs are stored once.
#[test]
fn batch_v2_common_metadata_golden() {
    let path = golden("batch_v2_common.json");
    let entries: Vec<Entry> = (0..3)
        .map(|i| {
            let mut e = Entry::new(
                1_763_675_346_000_000_000 + i * 1_000_000,
                Level::Info,
                "nginx",
                &format!("GET /orders/{i} 200"),
            );
            e.metadata.insert("file", "/var/log/nginx/access.log");
            e.metadata.insert("status", format!("20{i}"));
            e
        })
        .collect();
    let mut plain = Vec::new();
    batch::encode(&entries, &mut plain);
    if bless() {
        let doc = json!({
            "format": "LogFlux batch v2 (see docs/formats.md), entries sharing the file path",
            "batch_plaintext_hex": hex::encode(&plain),
            "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let want: Vec<Entry> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(entry_from_json)
        .collect();
    assert_eq!(want, entries);
    let committed = hex::decode(doc["batch_plaintext_hex"].as_str().unwrap()).unwrap();
    assert_eq!(batch::decode(&committed).unwrap(), want);
    assert_eq!(
        hex::encode(&plain),
        doc["batch_plaintext_hex"].as_str().unwrap()
    );
    let view = batch::BatchView::parse(&committed).unwrap();
    assert_eq!(view.common(), &[("file", "/var/log/nginx/access.log")]);
}

/// Which batch encoder a golden file was written with.
#[derive(Clone, Copy)]
enum Layout {
    V1,
    V2,
}

fn encode_as(layout: Layout, entries: &[Entry]) -> Vec<u8> {
    let mut plain = Vec::new();
    match layout {
        Layout::V1 => batch::encode_v1(entries, &mut plain),
        Layout::V2 => batch::encode(entries, &mut plain),
    }
    plain
}

/// Checks a committed sealed batch; `bless_as` writes it anew (with that format description)
/// under `LOGFLUX_BLESS=1`. `layout` is the batch version the file holds.
fn check_sealed_batch_golden(name: &str, bless_as: Option<&str>, layout: Layout) {
    let path = golden(name);
    let dek_bytes: Vec<u8> = (0u8..32).collect();
    if let (Some(format), true, Layout::V2) = (bless_as, bless(), layout) {
        let key = SealingKey::new(&Dek::from_bytes(&dek_bytes).unwrap());
        let nonce = *b"golden-nonce";
        let sealed = BatchSealer::new(3)
            .seal_with_nonce(&key, &BINDING, &entries(), nonce)
            .unwrap();
        let plain = encode_as(layout, &entries());
        let frame = zstd::bulk::compress(&plain, 3).unwrap();
        let doc = json!({
            "format": format,
            "zstd_frame_len": frame.len(),
            "dek_hex": hex::encode(&dek_bytes),
            "tenant": BINDING.tenant,
            "application": BINDING.application,
            "key_id": BINDING.key_id,
            "record_id": BINDING.record_id,
            "aad_hex": hex::encode(BINDING.aad()),
            "nonce_b64": B64.encode(sealed.nonce),
            "ciphertext_b64": B64.encode(&sealed.ciphertext),
            "batch_plaintext_hex": hex::encode(&plain),
            "entries": entries().iter().map(entry_json).collect::<Vec<_>>(),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let want: Vec<Entry> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(entry_from_json)
        .collect();
    assert_eq!(
        want,
        entries(),
        "the golden entries are the ones this test describes"
    );

    // The committed record still opens to exactly those entries.
    let key = SealingKey::new(
        &Dek::from_bytes(&hex::decode(doc["dek_hex"].as_str().unwrap()).unwrap()).unwrap(),
    );
    let binding = RecordBinding {
        tenant: doc["tenant"].as_str().unwrap(),
        application: doc["application"].as_str().unwrap(),
        key_id: doc["key_id"].as_str().unwrap(),
        record_id: doc["record_id"].as_str().unwrap(),
    };
    let nonce: [u8; 12] = B64
        .decode(doc["nonce_b64"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let ct = B64.decode(doc["ciphertext_b64"].as_str().unwrap()).unwrap();
    assert_eq!(open_batch(&key, &binding, &nonce, &ct).unwrap(), want);

    // The associated data and the batch encoding have not drifted.
    assert_eq!(hex::encode(binding.aad()), doc["aad_hex"].as_str().unwrap());
    let plain = encode_as(layout, &want);
    assert_eq!(
        hex::encode(&plain),
        doc["batch_plaintext_hex"].as_str().unwrap()
    );
    assert_eq!(batch::decode(&plain).unwrap(), want);
}

#[test]
fn tokens_v1_golden() {
    let path = golden("tokens_v1.json");
    let search_key_hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let sk = SearchKey::from_text(search_key_hex).unwrap();
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("level", None, "4"),
        ("type", None, "1"),
        ("source", None, "checkout"),
        ("meta", Some("host"), "web-1"),
        ("word", None, "payment"),
        ("word", None, "PAYMENT"),
        ("word", None, "Größe"),
        ("word", None, "東京"),
        ("word", None, "user_id"),
    ];
    let field = |name: &str, key: Option<&'static str>| match name {
        "level" => Field::Level,
        "type" => Field::Type,
        "source" => Field::Source,
        "meta" => Field::Meta(key.unwrap()),
        _ => Field::Word,
    };
    let compute = |app: &str| -> Value {
        let tk = sk.token_key(app);
        let case_tokens: Vec<Value> = cases
            .iter()
            .map(|(f, k, v)| {
                json!({"field": f, "key": k, "value": v,
                       "token": tk.token(field(f, *k), v).unwrap().to_string()})
            })
            .collect();
        let mut set = TokenSet::new();
        for e in entries() {
            set.add_entry(&e);
        }
        let batch_tokens: Vec<String> = set.finish(&tk).iter().map(ToString::to_string).collect();
        json!({"application": app, "cases": case_tokens, "batch_of_golden_entries": batch_tokens})
    };
    let now = json!({
        "scheme": "token key = HKDF-SHA256(ikm=search key, salt=\"logflux-tokens-v1\", info=application); token = hex(first 8 bytes of HMAC-SHA256(token key, field || 0x00 || value))",
        "search_key_hex": search_key_hex,
        "applications": [compute("app_checkout"), compute("app_billing")],
        "batch_entries": entries().iter().map(entry_json).collect::<Vec<_>>(),
    });
    if bless() {
        std::fs::write(&path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        now, committed,
        "token function drifted from tests/golden/tokens_v1.json"
    );
    // Case-folding of words is part of the format: PAYMENT and payment share a token.
    let c = &committed["applications"][0]["cases"];
    assert_eq!(c[4]["token"], c[5]["token"]);
    assert_ne!(
        committed["applications"][0]["cases"][0]["token"],
        committed["applications"][1]["cases"][0]["token"]
    );
}
