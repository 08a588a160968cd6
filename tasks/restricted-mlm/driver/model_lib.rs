//! The scorer's wrapper around the solution's model module (`model.rs`, copied beside it): the
//! crate is `no_std` and forbids unsafe code, its only dependency is `restricted` with the
//! escape hatch off, and it states the contract the driver relies on.

#![no_std]
#![forbid(unsafe_code)]

mod model;

pub use model::Model;

/// The contract: `Model::new(&Config, &mut Params) -> Result<Model>` and
/// `Model::forward(&self, &Tensor) -> Result<Tensor>`.
pub fn contract(config: &restricted::Config, params: &mut restricted::Params, tokens: &restricted::Tensor) -> restricted::Result<restricted::Tensor> {
    let model: Model = Model::new(config, params)?;
    model.forward(tokens)
}
