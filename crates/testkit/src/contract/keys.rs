//! Obligations of `ApiKeyStore`: creating (validated, no duplicate hash, increasing ids),
//! listing, revoking, verifying by prefix and hash (active keys only, nothing changed) and
//! recording the last use.

use prismq_domain::ports::{ApiKeyId, NewApiKey, PresentedKey, Scope};
use prismq_domain::PortError;

use super::support::setup;
use super::{ContractEnv, Subject};
use crate::fixtures::plus_secs;

/// A well-formed secret made from `n` (tests only: real secrets are random).
fn secret(n: u8) -> String {
    format!("pqk_{}", format!("{n:02x}").repeat(32))
}

fn new_key(n: u8, scopes: Vec<Scope>) -> NewApiKey {
    NewApiKey::for_secret(&secret(n), format!("key {n}"), scopes, 60).expect("well-formed")
}

/// create stores the key active, created now, never used, with sorted scopes without
/// repeats and the next id; list returns every key by id.
pub async fn create_stores_key_and_list_orders_by_id(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let a = s
        .keys
        .create(new_key(1, vec![Scope::Work, Scope::Read, Scope::Work]))
        .await
        .unwrap();
    assert!(a.active);
    assert_eq!(a.created_at, clock.now());
    assert_eq!(a.last_used_at, None);
    assert_eq!(a.scopes, vec![Scope::Read, Scope::Work]);
    assert_eq!(a.prefix, "pqk_01010101");
    assert_eq!(a.name, "key 1");
    assert_eq!(a.rate_limit, 60);
    let b = s.keys.create(new_key(2, vec![Scope::Admin])).await.unwrap();
    assert!(b.id > a.id);
    assert_eq!(s.keys.list().await.unwrap(), vec![a, b]);
}

/// An invalid key is refused with `Invalid` naming the field; a hash already stored is
/// `Duplicate`; neither writes anything.
pub async fn create_refuses_invalid_and_duplicate(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let mut bad = new_key(1, vec![Scope::Read]);
    bad.rate_limit = 0;
    match s.keys.create(bad).await {
        Err(PortError::Invalid(e)) => assert_eq!(e.field, "rate_limit"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let mut bad = new_key(1, vec![]);
    bad.scopes.clear();
    assert!(matches!(
        s.keys.create(bad).await,
        Err(PortError::Invalid(_))
    ));
    s.keys.create(new_key(1, vec![Scope::Read])).await.unwrap();
    assert!(matches!(
        s.keys.create(new_key(1, vec![Scope::Admin])).await,
        Err(PortError::Duplicate(_))
    ));
    assert_eq!(s.keys.list().await.unwrap().len(), 1);
}

/// verify finds the active key with the presented prefix and hash, and nothing for another
/// secret (even one sharing the prefix) or a revoked key; it changes nothing.
pub async fn verify_finds_only_active_matching_keys(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let a = s.keys.create(new_key(1, vec![Scope::Read])).await.unwrap();
    let found = s
        .keys
        .verify(&PresentedKey::parse(&secret(1)).unwrap())
        .await
        .unwrap();
    assert_eq!(found, Some(a.clone()));
    let same_prefix = format!("{}{}", &secret(1)[..12], "f".repeat(56));
    assert_eq!(
        s.keys
            .verify(&PresentedKey::parse(&same_prefix).unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.keys
            .verify(&PresentedKey::parse(&secret(2)).unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.keys.list().await.unwrap(), vec![a.clone()], "unchanged");
    s.keys.revoke(a.id).await.unwrap();
    assert_eq!(
        s.keys
            .verify(&PresentedKey::parse(&secret(1)).unwrap())
            .await
            .unwrap(),
        None,
        "revoked"
    );
}

/// revoke marks the key inactive (again: no change) and answers `NotFound` for an unknown id.
pub async fn revoke_deactivates_and_unknown_is_not_found(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let a = s.keys.create(new_key(1, vec![Scope::Read])).await.unwrap();
    let r = s.keys.revoke(a.id).await.unwrap();
    assert!(!r.active);
    assert_eq!(r.id, a.id);
    assert_eq!(s.keys.revoke(a.id).await.unwrap(), r, "revoking twice");
    assert_eq!(s.keys.list().await.unwrap(), vec![r]);
    assert!(matches!(
        s.keys.revoke(ApiKeyId(a.id.0 + 100)).await,
        Err(PortError::NotFound(_))
    ));
}

/// touch records the last use, never moving it back; an unknown id is `NotFound`.
pub async fn touch_records_last_use_forward_only(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let a = s.keys.create(new_key(1, vec![Scope::Read])).await.unwrap();
    let later = plus_secs(clock.now(), 120);
    s.keys.touch(a.id, later).await.unwrap();
    s.keys.touch(a.id, clock.now()).await.unwrap();
    let listed = s.keys.list().await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(later));
    let v = s
        .keys
        .verify(&PresentedKey::parse(&secret(1)).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.last_used_at, Some(later));
    assert!(matches!(
        s.keys.touch(ApiKeyId(a.id.0 + 100), later).await,
        Err(PortError::NotFound(_))
    ));
}
