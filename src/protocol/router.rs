//! `X-Amz-Target: <Prefix>.<Operation>` → `Operation`.
//!
//! Depends on: nothing crate-internal.

/// Target prefix of the Image Build service.
pub const IMAGE_BUILD_PREFIX: &str = "AWSMPImageBuilding";
/// Target prefix of the AMI scanning companion service.
pub const AMI_SCANNING_PREFIX: &str = "AWSMPAmiScanning";

/// Every operation the server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `AWSMPImageBuilding.StartBuild`.
    StartBuild,
    /// `AWSMPImageBuilding.DescribeBuilds`.
    DescribeBuilds,
    /// `AWSMPAmiScanning.StartScans`.
    StartScans,
    /// `AWSMPAmiScanning.DescribeScans`.
    DescribeScans,
    /// `AWSMPAmiScanning.DescribeScanFindings`.
    DescribeScanFindings,
    /// `AWSMPAmiScanning.ResubmitScan`.
    ResubmitScan,
    /// `AWSMPAmiScanning.ListImages`.
    ListImages,
}

impl Operation {
    /// Every operation, for drift tests against the models.
    pub const ALL: [Operation; 7] = [
        Operation::StartBuild,
        Operation::DescribeBuilds,
        Operation::StartScans,
        Operation::DescribeScans,
        Operation::DescribeScanFindings,
        Operation::ResubmitScan,
        Operation::ListImages,
    ];

    /// The model's target prefix for this operation.
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            Operation::StartBuild | Operation::DescribeBuilds => IMAGE_BUILD_PREFIX,
            _ => AMI_SCANNING_PREFIX,
        }
    }

    /// The model's operation name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Operation::StartBuild => "StartBuild",
            Operation::DescribeBuilds => "DescribeBuilds",
            Operation::StartScans => "StartScans",
            Operation::DescribeScans => "DescribeScans",
            Operation::DescribeScanFindings => "DescribeScanFindings",
            Operation::ResubmitScan => "ResubmitScan",
            Operation::ListImages => "ListImages",
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
        assert_eq!(
            Operation::from_target("AWSMPAmiScanning.StartScans"),
            Some(Operation::StartScans)
        );
        for bad in [
            "AWSMPImageBuilding.StartScans",
            "AWSMPAmiScanning.StartBuild",
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
    fn operations_match_the_models_exactly() {
        for text in [
            crate::model::IMAGE_BUILD_MODEL,
            crate::model::AMI_SCANNING_MODEL,
        ] {
            let model = crate::model::Model::parse(text).unwrap();
            let mut ours: Vec<String> = Operation::ALL
                .iter()
                .filter(|o| o.prefix() == model.target_prefix)
                .map(|o| o.name().to_string())
                .collect();
            ours.sort();
            assert_eq!(ours, model.operations.keys().cloned().collect::<Vec<_>>());
        }
    }

    #[test]
    fn op_errors_match_the_model_error_shapes() {
        let mut shapes = std::collections::BTreeSet::new();
        for text in [
            crate::model::IMAGE_BUILD_MODEL,
            crate::model::AMI_SCANNING_MODEL,
        ] {
            let model = crate::model::Model::parse(text).unwrap();
            shapes.extend(model.error_shapes());
            // every operation's modeled errors are ones we can produce
            for op in model.operations.values() {
                for e in &op.errors {
                    assert!(crate::ops::OpError::MODELED.contains(&e.as_str()), "{e}");
                }
            }
        }
        let ours: std::collections::BTreeSet<String> = crate::ops::OpError::MODELED
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(ours, shapes);
    }
}
