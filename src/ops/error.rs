//! `OpError`: one variant per modeled error shape (the variant name is the `__type`), plus
//! AWS's framework `ValidationException` for constraints no modeled error covers.
//!
//! Depends on: store (error conversion).

use crate::store::StoreError;

/// An operation's failure, as the caller will see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(clippy::enum_variant_names)] // the names are the model's error shape names
pub enum OpError {
    /// Too many concurrent builds.
    #[error("{0}")]
    BuildLimitExceededException(String),
    /// Same client token, different parameters.
    #[error("{0}")]
    IdempotentParameterMismatchException(String),
    /// Fulfillment option and source image platforms differ.
    #[error("{0}")]
    InstallerMismatchException(String),
    /// Something broke inside the service (retryable, 500).
    #[error("{0}")]
    InternalServerErrorException(String),
    /// Bad destination image name.
    #[error("{0}")]
    InvalidDestinationImageNameException(String),
    /// Bad filter name or value.
    #[error("{0}")]
    InvalidFilterException(String),
    /// Unknown or unusable fulfillment option.
    #[error("{0}")]
    InvalidFulfillmentOptionIdException(String),
    /// MaxResults out of range.
    #[error("{0}")]
    InvalidMaxResultsException(String),
    /// NextToken not valid for this caller and query.
    #[error("{0}")]
    InvalidNextTokenException(String),
    /// SNS topic does not exist.
    #[error("{0}")]
    InvalidSnsTopicArnException(String),
    /// Unknown or unusable source image.
    #[error("{0}")]
    InvalidSourceImageIdException(String),
    /// The principal may not call the operation.
    #[error("{0}")]
    UnauthorizedOperationException(String),
    /// More AMIs in one StartScans call than allowed.
    #[error("{0}")]
    ImageLimitExceededException(String),
    /// Malformed or foreign access role ARN.
    #[error("{0}")]
    InvalidAccessRoleArnException(String),
    /// Missing or malformed OS user name.
    #[error("{0}")]
    InvalidOsUserNameException(String),
    /// Port outside 1-65535.
    #[error("{0}")]
    InvalidScanningPortException(String),
    /// Unknown or foreign product.
    #[error("{0}")]
    InvalidProductIdException(String),
    /// Unknown scan, or one that cannot be used for the request.
    #[error("{0}")]
    InvalidScanIdException(String),
    /// The AMI already has a scan in progress.
    #[error("{0}")]
    ScanInProgressException(String),
    /// Too many scans in progress.
    #[error("{0}")]
    ScanLimitExceededException(String),
    /// A constraint without a modeled error (AWS framework error).
    #[error("{0}")]
    ValidationException(String),
}

impl OpError {
    /// Every variant's `__type`, for drift tests against the models.
    pub const MODELED: [&'static str; 20] = [
        "ImageLimitExceededException",
        "InvalidAccessRoleArnException",
        "InvalidOsUserNameException",
        "InvalidScanningPortException",
        "InvalidProductIdException",
        "InvalidScanIdException",
        "ScanInProgressException",
        "ScanLimitExceededException",
        "BuildLimitExceededException",
        "IdempotentParameterMismatchException",
        "InstallerMismatchException",
        "InternalServerErrorException",
        "InvalidDestinationImageNameException",
        "InvalidFilterException",
        "InvalidFulfillmentOptionIdException",
        "InvalidMaxResultsException",
        "InvalidNextTokenException",
        "InvalidSnsTopicArnException",
        "InvalidSourceImageIdException",
        "UnauthorizedOperationException",
    ];

    /// The error code sent as `__type`.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            OpError::BuildLimitExceededException(_) => "BuildLimitExceededException",
            OpError::IdempotentParameterMismatchException(_) => {
                "IdempotentParameterMismatchException"
            }
            OpError::InstallerMismatchException(_) => "InstallerMismatchException",
            OpError::InternalServerErrorException(_) => "InternalServerErrorException",
            OpError::InvalidDestinationImageNameException(_) => {
                "InvalidDestinationImageNameException"
            }
            OpError::InvalidFilterException(_) => "InvalidFilterException",
            OpError::InvalidFulfillmentOptionIdException(_) => {
                "InvalidFulfillmentOptionIdException"
            }
            OpError::InvalidMaxResultsException(_) => "InvalidMaxResultsException",
            OpError::InvalidNextTokenException(_) => "InvalidNextTokenException",
            OpError::InvalidSnsTopicArnException(_) => "InvalidSnsTopicArnException",
            OpError::InvalidSourceImageIdException(_) => "InvalidSourceImageIdException",
            OpError::UnauthorizedOperationException(_) => "UnauthorizedOperationException",
            OpError::ImageLimitExceededException(_) => "ImageLimitExceededException",
            OpError::InvalidAccessRoleArnException(_) => "InvalidAccessRoleArnException",
            OpError::InvalidOsUserNameException(_) => "InvalidOsUserNameException",
            OpError::InvalidScanningPortException(_) => "InvalidScanningPortException",
            OpError::InvalidProductIdException(_) => "InvalidProductIdException",
            OpError::InvalidScanIdException(_) => "InvalidScanIdException",
            OpError::ScanInProgressException(_) => "ScanInProgressException",
            OpError::ScanLimitExceededException(_) => "ScanLimitExceededException",
            OpError::ValidationException(_) => "ValidationException",
        }
    }

    /// The error whose `__type` is `name`, carrying `message` (`None` for names we don't send).
    #[must_use]
    pub fn from_type_name(name: &str, message: String) -> Option<Self> {
        let m = message;
        Some(match name {
            "BuildLimitExceededException" => OpError::BuildLimitExceededException(m),
            "IdempotentParameterMismatchException" => {
                OpError::IdempotentParameterMismatchException(m)
            }
            "InstallerMismatchException" => OpError::InstallerMismatchException(m),
            "InternalServerErrorException" => OpError::InternalServerErrorException(m),
            "InvalidDestinationImageNameException" => {
                OpError::InvalidDestinationImageNameException(m)
            }
            "InvalidFilterException" => OpError::InvalidFilterException(m),
            "InvalidFulfillmentOptionIdException" => {
                OpError::InvalidFulfillmentOptionIdException(m)
            }
            "InvalidMaxResultsException" => OpError::InvalidMaxResultsException(m),
            "InvalidNextTokenException" => OpError::InvalidNextTokenException(m),
            "InvalidSnsTopicArnException" => OpError::InvalidSnsTopicArnException(m),
            "InvalidSourceImageIdException" => OpError::InvalidSourceImageIdException(m),
            "UnauthorizedOperationException" => OpError::UnauthorizedOperationException(m),
            "ImageLimitExceededException" => OpError::ImageLimitExceededException(m),
            "InvalidAccessRoleArnException" => OpError::InvalidAccessRoleArnException(m),
            "InvalidOsUserNameException" => OpError::InvalidOsUserNameException(m),
            "InvalidScanningPortException" => OpError::InvalidScanningPortException(m),
            "InvalidProductIdException" => OpError::InvalidProductIdException(m),
            "InvalidScanIdException" => OpError::InvalidScanIdException(m),
            "ScanInProgressException" => OpError::ScanInProgressException(m),
            "ScanLimitExceededException" => OpError::ScanLimitExceededException(m),
            "ValidationException" => OpError::ValidationException(m),
            _ => return None,
        })
    }

    /// The HTTP status: 500 for the modeled fault, 400 for everything else.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            OpError::InternalServerErrorException(_) => 500,
            _ => 400,
        }
    }

    /// True for modeled shapes (which carry `Message`), false for framework errors (`message`).
    #[must_use]
    pub fn is_modeled(&self) -> bool {
        !matches!(self, OpError::ValidationException(_))
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        // The detail is logged at the boundary; the caller gets a generic, retryable fault.
        tracing::error!(error = %e, "store failure");
        OpError::InternalServerErrorException(
            "An internal error occurred. Please retry your request.".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_modeled_name_round_trips() {
        for name in OpError::MODELED.iter().chain(&["ValidationException"]) {
            let e = OpError::from_type_name(name, "m".into()).unwrap();
            assert_eq!((e.type_name(), e.to_string().as_str()), (*name, "m"));
        }
        assert!(OpError::from_type_name("ThrottlingException", String::new()).is_none());
    }
}
