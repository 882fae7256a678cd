package io.clicklib.registry;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import java.util.List;
import javax.enterprise.inject.Produces;
import javax.inject.Singleton;

/**
 * The list of settings that may be changed at run time through the registry's admin API.
 *
 * <p>Apicurio builds this list at build time in a Quarkus extension whose build-time module is
 * not on Maven Central (see pom.xml). An empty list means no setting is changed at run time:
 * each one keeps the value the registry was started with.
 */
public class RuntimeSettingsList {
    @Produces
    @Singleton
    DynamicConfigPropertyList runtimeSettings() {
        return new DynamicConfigPropertyList(List.of());
    }
}
