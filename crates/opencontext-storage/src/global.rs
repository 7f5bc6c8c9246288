//! The process-wide storage: [`init_storage`] once, [`get_storage`] anywhere.

use std::sync::{Arc, RwLock};

use storage_core::config::AppConfig;
use storage_core::{ErrorKind, Result, StorageBackendFactory, StorageError};

use crate::UnifiedStorage;

static GLOBAL: RwLock<Option<Arc<UnifiedStorage>>> = RwLock::new(None);
static INIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn read() -> Option<Arc<UnifiedStorage>> {
    GLOBAL.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn write(value: Option<Arc<UnifiedStorage>>) -> Option<Arc<UnifiedStorage>> {
    std::mem::replace(
        &mut *GLOBAL.write().unwrap_or_else(|p| p.into_inner()),
        value,
    )
}

/// Creates the backends `config` names and installs them as the process-wide storage.
/// Concurrent callers are serialised: exactly one initialises, the others get `Conflict`.
///
/// # Errors
/// [`ErrorKind::Conflict`] when storage is already initialised (call [`reset_storage`]
/// first); any error of [`UnifiedStorage::from_config`].
pub async fn init_storage(config: &AppConfig) -> Result<Arc<UnifiedStorage>> {
    init_storage_with(config, &crate::default_factory()).await
}

/// Like [`init_storage`], with backends created by `factory` (for custom backends).
pub async fn init_storage_with(
    config: &AppConfig,
    factory: &StorageBackendFactory,
) -> Result<Arc<UnifiedStorage>> {
    let _guard = INIT.lock().await;
    if read().is_some() {
        return Err(StorageError::new(
            ErrorKind::Conflict,
            "storage is already initialised",
        ));
    }
    let storage = Arc::new(UnifiedStorage::from_config_with(config, factory, None).await?);
    write(Some(storage.clone()));
    Ok(storage)
}

/// Installs an already built storage as the process-wide one.
///
/// # Errors
/// [`ErrorKind::Conflict`] when storage is already initialised.
pub async fn set_storage(storage: Arc<UnifiedStorage>) -> Result<()> {
    let _guard = INIT.lock().await;
    if read().is_some() {
        return Err(StorageError::new(
            ErrorKind::Conflict,
            "storage is already initialised",
        ));
    }
    write(Some(storage));
    Ok(())
}

/// The process-wide storage.
///
/// # Errors
/// [`ErrorKind::NotInitialized`] before [`init_storage`] (or after [`reset_storage`]).
pub fn get_storage() -> Result<Arc<UnifiedStorage>> {
    read().ok_or_else(|| {
        StorageError::new(
            ErrorKind::NotInitialized,
            "storage is not initialised; call init_storage first",
        )
    })
}

/// Whether [`init_storage`] has succeeded (and no reset followed).
pub fn is_initialized() -> bool {
    read().is_some()
}

/// Removes the process-wide storage and closes its backends (for tests and shutdown).
/// Handles obtained earlier stay usable until closed; calls on them then fail with
/// `NotInitialized`.
pub async fn reset_storage() -> Result<()> {
    let _guard = INIT.lock().await;
    match write(None) {
        Some(storage) => storage.close().await,
        None => Ok(()),
    }
}
