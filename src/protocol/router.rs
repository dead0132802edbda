//! `X-Amz-Target: <Prefix>.<Operation>` → `Operation`.
//!
//! Depends on: nothing crate-internal.

/// Target prefix of the Image Build service.
pub const IMAGE_BUILD_PREFIX: &str = "AWSMPImageBuilding";

/// Every operation the server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `AWSMPImageBuilding.StartBuild`.
    StartBuild,
    /// `AWSMPImageBuilding.DescribeBuilds`.
    DescribeBuilds,
}

impl Operation {
    /// Every operation, for drift tests against the models.
    pub const ALL: [Operation; 2] = [Operation::StartBuild, Operation::DescribeBuilds];

    /// The model's target prefix for this operation.
    #[must_use]
    pub fn prefix(self) -> &'static str {
        IMAGE_BUILD_PREFIX
    }

    /// The model's operation name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Operation::StartBuild => "StartBuild",
            Operation::DescribeBuilds => "DescribeBuilds",
        }
    }

    /// The IAM action (`aws-marketplace:StartBuild`).
    #[must_use]
    pub fn action(self) -> String {
        format!("aws-marketplace:{}", self.name())
    }

    /// Parses an `X-Amz-Target` value (case-sensitive).
    #[must_use]
    pub fn from_target(target: &str) -> Option<Self> {
        let (prefix, op) = target.split_once('.')?;
        Self::ALL
            .into_iter()
            .find(|o| o.prefix() == prefix && o.name() == op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_case_sensitively() {
        assert_eq!(
            Operation::from_target("AWSMPImageBuilding.StartBuild"),
            Some(Operation::StartBuild)
        );
        assert_eq!(
            Operation::from_target("AWSMPImageBuilding.DescribeBuilds"),
            Some(Operation::DescribeBuilds)
        );
        for bad in [
            "AWSMPImageBuilding.startbuild",
            "awsmpimagebuilding.StartBuild",
            "AWSMPImageBuilding",
            "X.StartBuild",
            "AWSMPImageBuilding.StartBuild.x",
            "",
        ] {
            assert_eq!(Operation::from_target(bad), None, "{bad}");
        }
    }

    #[test]
    fn operations_match_the_model_exactly() {
        let model = crate::model::Model::parse(crate::model::IMAGE_BUILD_MODEL).unwrap();
        let ours: Vec<&str> = Operation::ALL
            .iter()
            .filter(|o| o.prefix() == model.target_prefix)
            .map(|o| o.name())
            .collect();
        let mut ours: Vec<String> = ours.into_iter().map(String::from).collect();
        ours.sort();
        assert_eq!(ours, model.operations.keys().cloned().collect::<Vec<_>>());
    }

    #[test]
    fn op_errors_match_the_model_error_shapes() {
        let model = crate::model::Model::parse(crate::model::IMAGE_BUILD_MODEL).unwrap();
        let mut ours: Vec<String> = crate::ops::OpError::MODELED
            .iter()
            .map(|s| s.to_string())
            .collect();
        ours.sort();
        assert_eq!(ours, model.error_shapes());
        // and every operation's modeled errors are ones we can produce
        for op in model.operations.values() {
            for e in &op.errors {
                assert!(crate::ops::OpError::MODELED.contains(&e.as_str()), "{e}");
            }
        }
    }
}
